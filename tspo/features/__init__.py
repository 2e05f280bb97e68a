"""Candidate features: frozen CLIP encoders, the on-disk feature and encoder caches."""
