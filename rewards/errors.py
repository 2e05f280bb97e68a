"""Error types of ``tspo.rewards`` (all ``ValueError`` subclasses, so callers can catch broadly)."""

from __future__ import annotations

from tspo.errors import TSPOError


class RewardInputError(TSPOError, ValueError):
    """A reward function or the option parser got an input it cannot score (shape, range, type)."""


class OracleInputError(TSPOError, ValueError):
    """An :class:`OracleQuery` (or a batch of them) is malformed: options, answer, frames, selection."""


class OracleConfigError(TSPOError, ValueError):
    """An oracle cannot be built: unsupported model type, missing weights, bad settings."""
