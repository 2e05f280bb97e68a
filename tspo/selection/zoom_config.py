"""Budget knobs of the coarse-to-fine zoom (:mod:`tspo.selection.zoom`) and their command-line flags.

Kept free of torch so that ``tspo select --help`` stays fast; :mod:`tspo.selection.zoom` re-exports them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tspo.errors import TSPOError

STRATEGIES = ("single", "zoom")


class ZoomConfigError(TSPOError, ValueError):
    """A zoom budget knob with a value that cannot work."""


@dataclass(frozen=True)
class ZoomConfig:
    """Budget of one zoom selection (seconds unless named otherwise).

    ``coarse_candidates``: uniform candidates of stage 1. ``num_spans``: spans opened around the
    best coarse candidates. ``span_s``: width of each span; ``None`` = two coarse steps (the pick
    and its neighbours' half-way points on both sides). ``fine_fps``: grid inside the spans (and
    the grid the coarse candidates sit on). ``max_frames``: hard cap on frames encoded per video,
    coarse ones included.
    """

    coarse_candidates: int = 128
    num_spans: int = 4
    span_s: float | None = None
    fine_fps: float = 1.0
    max_frames: int = 384

    def __post_init__(self) -> None:
        for name in ("coarse_candidates", "num_spans", "max_frames"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ZoomConfigError(f"zoom {name} must be a positive int, got {v!r}")
        if not (isinstance(self.fine_fps, int | float) and math.isfinite(self.fine_fps) and self.fine_fps > 0):
            raise ZoomConfigError(f"zoom fine_fps must be a positive number of frames per second, got {self.fine_fps!r}")
        if self.span_s is not None and not (math.isfinite(self.span_s) and self.span_s > 0):
            raise ZoomConfigError(f"zoom span_s must be a positive number of seconds or None, got {self.span_s!r}")
        if self.max_frames < self.coarse_candidates:
            raise ZoomConfigError(
                f"zoom max_frames ({self.max_frames}) must be >= coarse_candidates ({self.coarse_candidates}): "
                "the coarse stage alone would break the cap; raise max_frames or lower coarse_candidates")

    def span_width(self, duration_s: float) -> float:
        """Span width in seconds for a video of ``duration_s`` (default: two coarse steps)."""
        if self.span_s is not None:
            return float(self.span_s)
        return 2.0 * max(duration_s / self.coarse_candidates, 1.0 / self.fine_fps)


# The zoom knobs, as the CLI flags (dashes for underscores) and the plug-in arguments spell them: knob ->
# (its ZoomConfig field, type, help). The one list: the flags, zoom_config() and pop_zoom_knobs() read it.
_KNOBS: dict[str, tuple[str, type, str]] = {
    "coarse_candidates": ("coarse_candidates", int, "uniform candidates of the coarse stage (default {})"),
    "zoom_spans": ("num_spans", int, "spans opened around the best coarse candidates (default {})"),
    "span_seconds": ("span_s", float, "width of a span in seconds (default: two coarse steps)"),
    "fine_fps": ("fine_fps", float, "frames per second inside the spans (default {})"),
    "max_frames_encoded": ("max_frames", int, "hard cap on frames encoded per video, coarse included (default {})"),
}
ZOOM_KNOBS = tuple(_KNOBS)


def add_zoom_arguments(parser) -> None:
    """The ``--strategy`` flag and zoom budget knobs shared by ``tspo select`` and ``tspo eval``."""
    d = ZoomConfig()
    g = parser.add_argument_group("coarse-to-fine zoom (--strategy zoom)")
    g.add_argument("--strategy", default="single", choices=STRATEGIES,
                   help="single: score uniform candidates (default); zoom: coarse candidates, then finer frames "
                        "inside the spans around the best ones (hour-long videos, second-long evidence)")
    for knob, (field, kind, text) in _KNOBS.items():
        g.add_argument("--" + knob.replace("_", "-"), type=kind, default=None,
                       help="zoom: " + text.format(getattr(d, field)))


def zoom_config(coarse_candidates: int | None = None, zoom_spans: int | None = None, span_seconds: float | None = None,
                fine_fps: float | None = None, max_frames_encoded: int | None = None) -> ZoomConfig:
    """A :class:`ZoomConfig` from the flag names of :func:`add_zoom_arguments` (also the lmms-eval
    plug-in's model arguments); ``None`` keeps a knob's default."""
    given = dict(zip(ZOOM_KNOBS, (coarse_candidates, zoom_spans, span_seconds, fine_fps, max_frames_encoded)))
    return ZoomConfig(**{_KNOBS[k][0]: v for k, v in given.items() if v is not None})


def pop_zoom_knobs(kwargs: dict) -> ZoomConfig:
    """A :class:`ZoomConfig` from the :data:`ZOOM_KNOBS` found in ``kwargs`` (removed from it, so the
    rest can go on to a wrapped model); knobs not given keep their defaults."""
    return zoom_config(**{name: kwargs.pop(name) for name in ZOOM_KNOBS if name in kwargs})


def zoom_config_from_args(args) -> ZoomConfig:
    """A :class:`ZoomConfig` from parsed :func:`add_zoom_arguments` flags; unset flags keep its defaults."""
    return zoom_config(**{knob: getattr(args, knob) for knob in ZOOM_KNOBS})
