"""Selection settings: how many frames, from which candidate grid, at what size they leave the package.

One owner for the defaults (k = 16 frames, 1 candidate per second, at most 128 candidates, the
ViT-L/14 encoder — the paper's settings — and frames handed on at a short side of 448 px) and for their validation. A
:class:`~tspo.TSPOSelector` holds one :class:`SelectionSettings` (saved in its ``config.json``);
every entry point (``select_frames``, ``tspo select``, ``tspo eval``, the plug-ins, training)
passes ``None`` for "the selector's value" and lets :meth:`SelectionSettings.override` fill it.

The selection method is one of these settings too, with no package-wide default: ``method=None``
means "the agent family's own" (:func:`tspo.agents.families.default_method`: ``tspo`` for the paper's
agent, ``tspo+shot`` for the filter family), which the selector fills in when it is built, so a saved
selector's ``config.json`` names it and an older one without the field still means its family's.

Frames that leave the package for a video LLM are always *whole*: short side ``frame_size`` px,
aspect ratio kept, never centre-cropped (only the CLIP encoder's own candidate frames are cropped).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

DEFAULT_NUM_FRAMES = 16
DEFAULT_FPS = 1.0
DEFAULT_MAX_CANDIDATES: int | None = 128
DEFAULT_FRAME_SIZE = 448
# The paper's frozen CLIP (its agent and the published weights use ViT-L/14 features, D = 768): the
# encoder of an untrained selector and of every command given no --encoder / --selector.
DEFAULT_ENCODER = "ViT-L-14:openai"
# The ``shot`` rule's cut: two consecutive candidates whose features are more than this cosine distance
# apart start a new shot (:func:`tspo.agents.rules.shot_ids`). Chosen on the question world's training
# needles (tspo-synth features, 1 fps; `python -m benchmarks.bench_shots`, record `shot_cut_distance`): the
# best mean of clip+shot's count and order coverage over 0.03-0.3; it cuts 99 % of the events' boundaries
# and ~0.5 times inside an event. It depends on the encoder's feature space: a selector may store its
# own (``SelectionSettings.cut_distance``, ``--cut-distance``).
DEFAULT_CUT_DISTANCE = 0.1


def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | np.integer)


def check_num_frames(num_frames: Any, name: str = "num_frames (k)") -> int:
    """The one validation of k, the number of frames to select: a positive int, or ValueError."""
    if not _is_int(num_frames) or num_frames <= 0:
        raise ValueError(f"{name} must be a positive int (frames to select), got {num_frames!r}")
    return int(num_frames)


def check_fps(fps: Any, name: str = "fps") -> float:
    """Candidates per second: a finite number > 0, or ValueError."""
    if isinstance(fps, bool) or not isinstance(fps, int | float | np.number) or not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"{name} must be a positive number of candidate frames per second, got {fps!r}")
    return float(fps)


def check_max_candidates(max_candidates: Any, name: str = "max_candidates") -> int | None:
    """A cap on the candidates per video: a positive int, or None for no cap."""
    if max_candidates is None:
        return None
    if not _is_int(max_candidates) or max_candidates <= 0:
        raise ValueError(f"{name} must be a positive int or None (no cap), got {max_candidates!r}")
    return int(max_candidates)


def check_frame_size(frame_size: Any, name: str = "frame_size") -> int:
    """Short side in pixels of the frames handed to a video LLM: a positive int."""
    if not _is_int(frame_size) or frame_size <= 0:
        raise ValueError(f"{name} must be a positive int (short side in pixels), got {frame_size!r}")
    return int(frame_size)


def check_method(method: Any, name: str = "method") -> str | None:
    """A selection method name, or None for the selector's agent family's own. Only its form is checked
    here: the method registry (``tspo.agents.methods.get_method``, which lists the choices) lives with
    torch code a layer up, and the selector checks the name against it."""
    if method is None:
        return None
    if not isinstance(method, str) or not method.strip():
        raise ValueError(f"{name} must be a selection method name such as 'tspo' or 'tspo+nms' (or None for "
                         f"the selector's own), got {method!r}")
    return method


def check_cut_distance(cut_distance: Any, name: str = "cut_distance") -> float | None:
    """The shot rule's cut (a cosine distance in [0, 2]), or None for :data:`DEFAULT_CUT_DISTANCE`."""
    if cut_distance is None:
        return None
    if isinstance(cut_distance, bool) or not isinstance(cut_distance, int | float | np.number) or \
            not 0.0 <= float(cut_distance) <= 2.0:
        raise ValueError(f"{name} must be a cosine distance in [0, 2] between consecutive candidates' features "
                         f"(or None for the default {DEFAULT_CUT_DISTANCE:g}), got {cut_distance!r}")
    return float(cut_distance)


@dataclass(frozen=True)
class SelectionSettings:
    """What a selection is made of.

    ``num_frames``: k, frames selected. ``fps``: candidates per second of video. ``max_candidates``:
    cap on the candidates T (an evenly spaced subset beyond it; None = no cap). ``frame_size``:
    short side (px) of the whole frames handed on (``return_frames``, oracle frames). ``method``: the
    selection method (None: the agent family's own, which a :class:`~tspo.TSPOSelector` fills in).
    ``cut_distance``: where the ``shot`` rule (``tspo+shot``, ``clip+shot``) cuts shots, a cosine distance
    between consecutive candidates' features (None: :data:`DEFAULT_CUT_DISTANCE`, measured for tspo-synth
    features; another encoder may want another).
    """

    num_frames: int = DEFAULT_NUM_FRAMES
    fps: float = DEFAULT_FPS
    max_candidates: int | None = DEFAULT_MAX_CANDIDATES
    frame_size: int = DEFAULT_FRAME_SIZE
    method: str | None = None
    cut_distance: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "num_frames", check_num_frames(self.num_frames))
        object.__setattr__(self, "fps", check_fps(self.fps))
        object.__setattr__(self, "max_candidates", check_max_candidates(self.max_candidates))
        object.__setattr__(self, "frame_size", check_frame_size(self.frame_size))
        object.__setattr__(self, "method", check_method(self.method))
        object.__setattr__(self, "cut_distance", check_cut_distance(self.cut_distance))

    def override(
        self,
        num_frames: int | None = None,
        fps: float | None = None,
        max_candidates: int | None = None,
        frame_size: int | None = None,
        method: str | None = None,
        cut_distance: float | None = None,
    ) -> SelectionSettings:
        """These settings with every argument that is not None replacing the stored value."""
        given = {"num_frames": num_frames, "fps": fps, "max_candidates": max_candidates, "frame_size": frame_size,
                 "method": method, "cut_distance": cut_distance}
        return replace(self, **{k: v for k, v in given.items() if v is not None})

    def to_config(self) -> dict[str, Any]:
        """The fields as saved in a selector's ``config.json`` (``method`` and ``cut_distance`` only when set)."""
        return {k: v for k, v in asdict(self).items() if v is not None or k not in ("method", "cut_distance")}

    def sampling_config(self) -> dict[str, Any]:
        """:meth:`to_config` without ``method``: what an evaluation that runs several methods records."""
        out = self.to_config()
        out.pop("method", None)
        return out

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SelectionSettings:
        """Settings from a selector config; fields it does not name take the defaults (older configs;
        no ``method``: the agent family's own)."""
        defaults = cls()
        return cls(**{k: config.get(k, getattr(defaults, k)) for k in cls.FIELDS})

    FIELDS = ("num_frames", "fps", "max_candidates", "frame_size", "method", "cut_distance")


def clip_num_frames(num_frames: int, num_candidates: int) -> tuple[int, str | None]:
    """k limited to the T candidates there are: -> (k', warning or None). A video shorter than
    k / fps seconds has fewer candidates than frames asked; all of them are selected then."""
    if num_candidates <= 0:
        raise ValueError("there are no candidate frames to select from (T = 0); check the video and fps")
    if num_frames <= num_candidates:
        return num_frames, None
    return num_candidates, (f"asked for {num_frames} frames but the video has only {num_candidates} candidates; "
                            f"selecting all {num_candidates} (raise fps or lower k)")


def add_settings_arguments(parser: Any, frames_for: str) -> None:
    """The command-line flags of the selection settings (``-k``, ``--fps``, ``--max-candidates``,
    ``--frame-size``, ``--cut-distance``), each defaulting to None = "the selector's value"; ``frames_for`` says what the
    frame size is used for in the help. Parse them back with :meth:`SelectionSettings.override`."""
    fallback = "(default: the selector's, else {})"
    parser.add_argument("-k", "--num-frames", type=int, default=None,
                        help="frames to select " + fallback.format(DEFAULT_NUM_FRAMES))
    parser.add_argument("--fps", type=float, default=None,
                        help="candidate frames per second " + fallback.format(f"{DEFAULT_FPS:g}"))
    parser.add_argument("--max-candidates", type=int, default=None,
                        help="cap on the candidates per video " + fallback.format(DEFAULT_MAX_CANDIDATES))
    parser.add_argument("--frame-size", type=int, default=None,
                        help=f"short side in px of {frames_for} " + fallback.format(DEFAULT_FRAME_SIZE))
    parser.add_argument("--cut-distance", type=float, default=None,
                        help="the shot rule's cut (tspo+shot, clip+shot): cosine distance between consecutive "
                             "candidates' features that starts a new shot " + fallback.format(DEFAULT_CUT_DISTANCE))

# TSPOModule's R_A and KL defaults (model.answer_reward / model.kl_beta left null). Single-stage GRPO, the
# default objective, uses the oracle's probability of the right option (a lucky guess earns 1/N, not 1) and
# KL 0.002 to the frozen initial agent: on the question world (benchmarks/RESULTS.md question_goal_default,
# two seeds, 900 held-out needles per set) no kind falls below CLIP top-k beyond its interval, where the
# paper's 0/1 reward without KL does (count) and the soft reward alone does (order); the learning check
# still passes, as fast as the paper's recipe (learning, learning_paper: 0.16 -> 0.99 held-out picks in the
# target). KL 0.01 held CLIP's level too but slowed learning (learning_soft_kl001: 0.85).
# Zoom and the pair objectives (DPO / replay) keep the paper's: they rank by the 0/1 reward and train
# on-policy without KL.
SINGLE_STAGE_GRPO_DEFAULTS: dict = {"answer_reward": "soft", "kl_beta": 0.002}
# The paper's recipe (Eq. 9: R_A 0/1, no KL term): what the benchmarks that measure the paper pass explicitly.
PAPER_GRPO_RECIPE: dict = {"answer_reward": "hard", "kl_beta": 0.0}


def grpo_reward_defaults(single_stage: bool) -> dict:
    """``{"answer_reward", "kl_beta"}`` for options left null: :data:`SINGLE_STAGE_GRPO_DEFAULTS` for
    single-stage GRPO (no zoom, no DPO / replay pairs), :data:`PAPER_GRPO_RECIPE` otherwise."""
    return dict(SINGLE_STAGE_GRPO_DEFAULTS if single_stage else PAPER_GRPO_RECIPE)


# The GRPO options measured to let RL add to a warm start from the oracle's answers alone
# (benchmarks/RESULTS.md, warmstart_filter_rl*): the soft answer reward (1 when the selection covers
# what the kind needs, 1/N otherwise: confidence 1.0 for the SimulatedOracle), no R_T (it rewards picks
# in the annotated target clip, a label), exact Plackett-Luce log-probabilities, tau relative to each
# question's score spread, no KL. TSPOModule keyword arguments (model.* in a config;
# defined here, torch-free, so `tspo demo --help` answers before torch loads); the learning rate (rl_lr) and the
# questions per step (trainer.accumulate_grad_batches) are set beside them. The demo's question world,
# bench_warmstart's "oracle" recipe, examples/configs/question_warmstart.yaml and
# examples/configs/experiments/question_oracle_rl.yaml (checked by a test) use it.
ORACLE_GRPO_RECIPE: dict = {"answer_reward": "soft", "kl_beta": 0.0, "tau_relative": True, "tau_start": 0.3,
                            "tau_end": 0.1, "w_temporal": 0.0, "logprob": "plackett_luce", "oracle_args": {"confidence": 1.0}}
