"""Judging selections with an oracle: the eval loop, the held-out check, per-kind reports, answer logs, benchmark readers."""
