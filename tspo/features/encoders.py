"""Frozen CLIP encoders from a spec string.

Specs, like open_clip's split of *architecture* and *weights*:

- ``"MODEL:PRETRAINED"``: an open_clip architecture and a pretrained tag, e.g. ``"ViT-L-14:openai"``
  (the paper's encoder and the default);
- ``"MODEL:/path/to/weights.bin"``: the same architecture with local weights (the offline way);
- ``"hf-hub:org/repo"`` / ``"local-dir:/path"``: open_clip's own schemes;
- ``"tiny-random"``: a 64-d ViT with 32x32 images and weights from a fixed seed. It needs no
  download and is identical in every process, so tests, the demo and feature caches can rely on it.
- ``"tspo-synth"``: a 64-d ViT (64x64 images) trained on the synthetic world of ``tspo synth``
  (shapes, colours, words, the renderer's questions), shipped with the package; one you trained
  with ``tspo synth encoder --out DIR`` is ``"tspo-synth:DIR/open_clip_model.safetensors"``.

The architectures in ``tspo/model_configs`` (``tspo-tiny-random``, ``tspo-synth``) are registered
with open_clip whenever an encoder loads, so ``MODEL:/path`` specs work for them too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
import weakref
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tspo.errors import TSPOError
from tspo.network import hub_files_only, hub_unreachable
from tspo.settings import DEFAULT_ENCODER

logger = logging.getLogger(__name__)

TINY_RANDOM = "tiny-random"
_TINY_ARCH = "tspo-tiny-random"
_TINY_SEED = 20250722
_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # tspo/: the package data lives there
_CONFIG_DIR = _PACKAGE_DIR / "model_configs"
SYNTH = "tspo-synth"
SYNTH_WEIGHTS = _PACKAGE_DIR / "weights" / SYNTH / "open_clip_model.safetensors"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class EncoderWeightsError(TSPOError, RuntimeError):
    """Pretrained encoder weights are not available (offline, not cached, or a bad local file)."""


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"MODEL:PRETRAINED"`` -> (model, pretrained); schemes and ``tiny-random`` pass through."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"encoder spec must be a non-empty string like 'ViT-L-14:openai', got {spec!r}")
    spec = spec.strip()
    if spec == TINY_RANDOM:
        return _TINY_ARCH, None
    if spec == SYNTH:
        return SYNTH, str(SYNTH_WEIGHTS)
    if spec.startswith(("hf-hub:", "local-dir:")):
        return spec, None
    model, sep, pretrained = spec.partition(":")
    if not sep or not pretrained:
        raise ValueError(
            f"encoder spec {spec!r} names no weights; use 'MODEL:PRETRAINED' (e.g. 'ViT-L-14:openai'), "
            "'MODEL:/path/to/weights.bin', or 'tiny-random' for an offline random encoder"
        )
    return model, pretrained


def register_model_configs() -> None:
    """Make the package's own architectures (``tspo/model_configs/*.json``) known to open_clip."""
    import open_clip

    known = set(open_clip.list_models())
    for path in sorted(_CONFIG_DIR.glob("*.json")):
        if path.stem not in known:
            open_clip.add_model_config(path)


def model_config(name: str) -> dict:
    """The open_clip model config of a registered architecture (e.g. ``tspo-synth``)."""
    import open_clip

    register_model_configs()
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise ValueError(f"unknown open_clip architecture {name!r}")
    return cfg


def preprocess_frames(frames: torch.Tensor, image_size: int, mean=CLIP_MEAN, std=CLIP_STD) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> normalised float32 ``[T, 3, S, S]``: short side to ``image_size``
    (bicubic, antialiased), centre crop, CLIP mean/std. The one preprocessing of every encoder."""
    x = frames.permute(0, 3, 1, 2).float() / 255.0
    if x.shape[-2:] != (image_size, image_size):
        scale = image_size / min(x.shape[-2:])
        new = (max(image_size, round(x.shape[-2] * scale)), max(image_size, round(x.shape[-1] * scale)))
        x = F.interpolate(x, size=new, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
        top, left = (new[0] - image_size) // 2, (new[1] - image_size) // 2
        x = x[..., top : top + image_size, left : left + image_size]
    mean = torch.as_tensor(mean, dtype=torch.float32, device=x.device)[:, None, None]
    std = torch.as_tensor(std, dtype=torch.float32, device=x.device)[:, None, None]
    return (x - mean) / std


def _missing_weights_message(spec: str, model: str, pretrained: str, err: Exception, no_network: str | None) -> str:
    """``no_network``: why the hub cannot be reached (:func:`tspo.network.hub_unreachable`), or None."""
    return (
        f"could not load the weights of encoder {spec!r} ({type(err).__name__}: {err}).\n"
        f"{f'The network is off ({no_network}) and they' if no_network else 'They'} are not in the local cache. "
        "Either:\n"
        f"  1. on a machine with internet, run once: python -c \"import open_clip; "
        f"open_clip.create_model_and_transforms('{model}', pretrained='{pretrained}')\" "
        "and copy ~/.cache/huggingface (or set HF_HOME) to this machine; or\n"
        f"  2. download the open_clip weights file and pass it as a local path: --encoder '{model}:/path/to/weights.bin' "
        f"(Python: load_encoder('{model}:/path/to/weights.bin')); or\n"
        "  3. use --encoder tiny-random to try the pipeline with random weights (selections are then meaningless)."
    )


class ClipEncoder:
    """A frozen open_clip model: frames ``uint8[T,H,W,3]`` -> ``float32[T,D]``, text -> ``float32[D]``.

    Embeddings are the projected CLIP embeddings, *not* normalised (the agent normalises where
    the paper does). Work runs batched under ``torch.no_grad`` on ``device`` in ``dtype``;
    results come back as float32 on the CPU.
    """

    def __init__(self, spec: str, model: torch.nn.Module, tokenizer, device: str | torch.device, dtype: torch.dtype):
        self.spec = spec
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.dtype = dtype
        cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
        size = cfg.get("size", getattr(model.visual, "image_size", 224))
        self.image_size = int(size[0] if isinstance(size, tuple | list) else size)
        self._mean = torch.tensor(cfg.get("mean", CLIP_MEAN), dtype=torch.float32)
        self._std = torch.tensor(cfg.get("std", CLIP_STD), dtype=torch.float32)
        self.context_length = int(getattr(tokenizer, "context_length", 77))
        with torch.no_grad():
            self.dim = int(self.encode_text("probe").shape[-1])

    def __repr__(self) -> str:
        return f"ClipEncoder(spec={self.spec!r}, dim={self.dim}, image_size={self.image_size}, device={self.device})"

    def _preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        # Short side to image_size, then centre crop: the CLIP recipe, on already small frames.
        return preprocess_frames(frames.to(self.device), self.image_size, self._mean, self._std).to(self.dtype)

    @torch.no_grad()
    def encode_frames(self, frames: np.ndarray | torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Image embeddings of ``frames`` (uint8 ``[T, H, W, 3]``, RGB): -> float32 ``[T, D]``."""
        frames = torch.as_tensor(frames)
        if frames.dim() != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 [T, H, W, 3] (RGB), got shape {tuple(frames.shape)}")
        if frames.dtype != torch.uint8:
            raise ValueError(f"frames must be uint8 in [0, 255], got dtype {frames.dtype}")
        if frames.shape[0] == 0:
            raise ValueError("frames is empty (T = 0); nothing to encode")
        out = [
            self.model.encode_image(self._preprocess(frames[i : i + batch_size])).float().cpu()
            for i in range(0, frames.shape[0], batch_size)  # batches bound memory, not per-frame work
        ]
        return torch.cat(out)

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """Text embeddings: N strings -> float32 ``[N, D]``; over-long texts are truncated with a warning."""
        for text in check_texts(texts):
            encode = getattr(self.tokenizer, "encode", None)
            if encode is not None and len(encode(text)) + 2 > self.context_length:
                warnings.warn(
                    f"text of {len(text)} characters is longer than the encoder's {self.context_length}-token "
                    f"context and is truncated: {text[:60]!r}...",
                    stacklevel=2,
                )
        tokens = self.tokenizer(texts).to(self.device)
        return self.model.encode_text(tokens).float().cpu()

    def encode_text(self, text: str) -> torch.Tensor:
        """Text embedding of one string: -> float32 ``[D]``."""
        return self.encode_texts([check_text(text)])[0]


def check_texts(texts: list[str]) -> list[str]:
    """The texts an encoder embeds: a non-empty list of non-empty strings (else ValueError naming the bad one)."""
    if isinstance(texts, str) or not texts:
        raise ValueError("texts must be a non-empty list of strings")
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"each text must be a non-empty string, got {text!r}")
    return texts


def check_text(text: str) -> str:
    """One question / text to embed: a non-empty string (else ValueError)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"question/text must be a non-empty string, got {text!r}")
    return text


def is_weights_path(pretrained: str | None) -> bool:
    """Whether the weights part of a spec names a local file rather than an open_clip pretrained tag."""
    return pretrained is not None and (os.sep in pretrained or pretrained.endswith((".bin", ".pt", ".safetensors")))


def default_dtype(device: str | torch.device) -> torch.dtype:
    """The precision an encoder runs in on ``device`` unless told otherwise: fp16 on CUDA, else fp32."""
    return torch.float16 if torch.device(device).type == "cuda" else torch.float32


def load_encoder(
    spec: str = DEFAULT_ENCODER, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> ClipEncoder:
    """Build a frozen :class:`ClipEncoder` from a spec (module docstring). Missing weights offline
    raise :class:`EncoderWeightsError` saying how to supply a local file."""
    import open_clip

    model_name, pretrained = parse_spec(spec)
    device = torch.device(device)
    if dtype is None:
        dtype = default_dtype(device)
    register_model_configs()
    if model_name == _TINY_ARCH:
        # Fixed seed, own RNG state: the same weights in every process, the caller's RNG untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_TINY_SEED)
            with _quiet_open_clip():
                model = open_clip.create_model(_TINY_ARCH, pretrained=None, device=device)
    else:
        if is_weights_path(pretrained):
            if not os.path.isfile(pretrained):
                raise EncoderWeightsError(
                    f"encoder weights file {pretrained!r} (from spec {spec!r}) does not exist; "
                    "pass the path of an open_clip checkpoint for that architecture"
                )
        if model_name not in open_clip.list_models() and not model_name.startswith(("hf-hub:", "local-dir:")):
            raise ValueError(
                f"unknown open_clip architecture {model_name!r} in encoder spec {spec!r}; "
                f"known ones include {', '.join(open_clip.list_models()[:8])}, ... (open_clip.list_models())"
            )
        tags = open_clip.list_pretrained_tags_by_model(model_name) if model_name in open_clip.list_models() else []
        if pretrained is not None and not is_weights_path(pretrained) and tags and pretrained not in tags:
            raise ValueError(
                f"open_clip has no pretrained tag {pretrained!r} for {model_name} (encoder spec {spec!r}); "
                f"valid tags: {', '.join(tags)} (or a local weights file: '{model_name}:/path/to/weights.bin')"
            )

        # Without a network, the cache alone: the advice below comes in seconds, not after a minute of retries.
        no_network = None if is_weights_path(pretrained) or model_name.startswith("local-dir:") else hub_unreachable()
        try:
            with hub_files_only(no_network is not None), _quiet_open_clip(logging.CRITICAL):
                model = open_clip.create_model(model_name, pretrained=pretrained, device=device,
                                               require_pretrained=True)  # fmt: skip
        except Exception as err:  # download, file and state-dict errors all mean "no usable weights"
            raise EncoderWeightsError(_missing_weights_message(spec, model_name, pretrained or "", err, no_network)) from err
    model = model.to(dtype=dtype)
    tokenizer = open_clip.get_tokenizer(model_name)
    return ClipEncoder(spec, model, tokenizer, device, dtype)


# Encoders in use, by (spec, device): a frozen encoder is loaded once per process while anyone holds it.
_SHARED: weakref.WeakValueDictionary[tuple[str, str], ClipEncoder] = weakref.WeakValueDictionary()


def shared_encoder(spec: str, device: str | torch.device = "cpu") -> ClipEncoder:
    """The frozen encoder for ``spec`` on ``device``, the same object for every caller in this process
    while one holds it (training: the LightningModule's agent and the DataModule's features ask here
    instead of reading each other); else :func:`load_encoder` builds it."""
    key = (spec, str(torch.device(device)))
    enc = _SHARED.get(key)
    if enc is None:
        enc = load_encoder(spec, device=device)
        _SHARED[key] = enc
    return enc


@contextlib.contextmanager
def _quiet_open_clip(level_inside: int = logging.ERROR):
    """open_clip logs 'initialized randomly' at WARNING; for tiny-random that is the point. Its
    'Failed to download weights' ERROR repeats what EncoderWeightsError says (pass CRITICAL)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(level_inside)
    try:
        yield
    finally:
        root.setLevel(level)
