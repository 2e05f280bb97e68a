"""Model arguments of ``tspo_video`` (pure, no lmms-eval import): which are tspo's, and which of the
rest look like a misspelt tspo argument rather than one meant for the wrapped model."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from tspo.selection.zoom_config import ZOOM_KNOBS

# tspo_video's own keyword arguments (TSPOVideo.__init__); everything else goes to base_model
TSPO_ARGS = ("base_model", "selector", "num_frames", "fps", "max_candidates", "visual_mode", "frame_size",
             "timestamps_in_prompt", "device", "clip_dir", "selection_log", "strategy", "method", *ZOOM_KNOBS)
SIMILARITY = 0.85  # num_frame ~ num_frames (0.95); nframes (0.82) and max_num_frames (a name of its own) pass on


def misspelt_tspo_args(passed_on: Mapping | Iterable[str], own: Iterable[str] = TSPO_ARGS) -> dict[str, str]:
    """``{argument: the tspo argument it resembles}`` for arguments about to go to the wrapped model
    that are near-misses of a tspo argument (similar, and not the tspo name with a word added:
    ``max_num_frames`` is the wrapped model's own)."""
    own = list(own)
    found = {}
    for name in passed_on:
        for match in difflib.get_close_matches(name, own, n=1, cutoff=SIMILARITY):
            if not (name.startswith(match + "_") or name.endswith("_" + match)):
                found[name] = match
    return found


def check_passed_on(passed_on: Mapping | Iterable[str]) -> None:
    """Raise ValueError naming every misspelt tspo argument among those handed to the wrapped model."""
    bad = misspelt_tspo_args(passed_on)
    if bad:
        names = ", ".join(f"{k!r} (did you mean {v}?)" for k, v in bad.items())
        raise ValueError(f"tspo_video: unknown tspo argument(s) {names}; fix the spelling: arguments tspo does "
                         f"not know go to the wrapped base_model unchanged. tspo's own: {', '.join(TSPO_ARGS)}")
