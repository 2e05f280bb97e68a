"""An encoder that loads only when it has to: a cached call costs torch and the agent, not open_clip.

Once a video's candidate features are cached, what is left of ``tspo select`` is the question's
text embedding, and building the CLIP model for it (``import open_clip`` alone takes seconds) cost
far more than the selection. Two small stores beside the candidate features (one cache root, the
:class:`~tspo.features.cache.FeatureCache`'s) remove that:

- ``ROOT/encoders/<id>.json``, the encoder's *card*: ``dim``, ``image_size`` and the identity it
  was written for, saved the first time the encoder really loads;
- ``ROOT/text/<ab>/<key>.safetensors``: one text embedding (float32 ``[D]``) per (encoder, text).

:class:`CachedEncoder` answers ``dim`` / ``image_size`` from the card and texts from the store, and
builds the real :class:`~tspo.features.encoders.ClipEncoder` on the first frame to encode or text not yet
seen. The identity covers the spec, device type, dtype, the open_clip and torch versions and, for
a weights file, that file's content identity, so a changed file or library never serves stale
embeddings. Specs whose weights cannot be identified cheaply (``hf-hub:``, ``local-dir:``) load
eagerly as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from importlib import metadata
from pathlib import Path

import torch

from tspo.features.cache import atomic_write
from tspo.features.encoders import (
    ClipEncoder,
    EncoderWeightsError,
    check_text,
    check_texts,
    default_dtype,
    is_weights_path,
    load_encoder,
    parse_spec,
)
from tspo.video import file_identity

logger = logging.getLogger(__name__)
_CARD_VERSION = 1


class EncoderCardError(EncoderWeightsError):
    """The cached card of an encoder does not match the model that loads for it (the card is removed)."""


def encoder_identity(spec: str, device: str | torch.device, dtype: torch.dtype) -> str | None:
    """Hex identity of the embeddings ``spec`` gives on ``device`` in ``dtype``; ``None`` when the
    weights cannot be identified without loading them (hub / directory schemes, a missing file)."""
    model, pretrained = parse_spec(spec)
    if model.startswith(("hf-hub:", "local-dir:")):
        return None
    weights: str | None = None
    if is_weights_path(pretrained):
        if not os.path.isfile(pretrained):
            return None  # load_encoder reports the missing file with its own message

        weights = file_identity(pretrained)
    try:
        open_clip_version = metadata.version("open_clip_torch")
    except metadata.PackageNotFoundError:
        open_clip_version = "none"
    payload = json.dumps({"v": _CARD_VERSION, "spec": spec.strip(), "weights": weights,
                          "device": torch.device(device).type, "dtype": str(dtype),
                          "open_clip": open_clip_version, "torch": torch.__version__}, sort_keys=True)  # fmt: skip
    return hashlib.sha256(payload.encode()).hexdigest()[:40]


class CachedEncoder:
    """The :class:`~tspo.features.encoders.ClipEncoder` interface, loading the model only on a cache miss.

    ``encode_frames`` always needs the model; ``encode_texts`` / ``encode_text`` serve texts seen
    before from ``root/text`` and encode (then store) only the others. ``loaded`` says whether the
    model has been built in this process.
    """

    def __init__(self, spec: str, device: str | torch.device, root: str | os.PathLike, identity: str,
                 card: dict, encoder: ClipEncoder | None = None) -> None:  # fmt: skip
        self.spec = spec
        self.device = torch.device(device)
        self.dtype = default_dtype(self.device) if encoder is None else encoder.dtype
        self.dim = int(card["dim"])
        self.image_size = int(card["image_size"])
        self.root = Path(root)
        self.identity = identity
        self._encoder = encoder
        self._texts: dict[str, torch.Tensor] = {}

    def __repr__(self) -> str:
        return (f"CachedEncoder(spec={self.spec!r}, dim={self.dim}, image_size={self.image_size}, "
                f"device={self.device}, loaded={self.loaded})")  # fmt: skip

    @property
    def loaded(self) -> bool:
        return self._encoder is not None

    def load(self) -> ClipEncoder:
        """The real encoder, built on first use; its card must match the one this was made from."""
        if self._encoder is None:
            enc = load_encoder(self.spec, device=self.device, dtype=self.dtype)
            if (enc.dim, enc.image_size) != (self.dim, self.image_size):
                # The identity should have changed with anything that changes the model; if not,
                # the card is wrong and so may be everything keyed by it.
                _card_path(self.root, self.identity).unlink(missing_ok=True)
                raise EncoderCardError(
                    f"encoder {self.spec!r} loaded with dim {enc.dim} / image size {enc.image_size}, but its card "
                    f"in {str(self.root)!r} says {self.dim} / {self.image_size}; the card was removed, run again")
            self._encoder = enc
        return self._encoder

    @property
    def model(self) -> torch.nn.Module:
        return self.load().model

    def encode_frames(self, frames, batch_size: int = 64) -> torch.Tensor:
        """Image embeddings of uint8 ``[T, H, W, 3]`` frames -> float32 ``[T, D]`` (loads the model)."""
        return self.load().encode_frames(frames, batch_size)

    def _text_path(self, text: str) -> Path:
        key = hashlib.sha256(f"{self.identity}\0{text}".encode()).hexdigest()[:40]
        return self.root / "text" / key[:2] / f"{key}.safetensors"

    def _lookup(self, text: str) -> torch.Tensor | None:
        if text in self._texts:
            return self._texts[text]
        path = self._text_path(text)
        if not path.is_file():
            return None
        from safetensors.torch import load_file

        try:
            emb = load_file(str(path))["embedding"]
        except Exception as err:  # a damaged entry is recomputed, never trusted
            logger.warning("ignoring unreadable text embedding cache entry %s (%s)", path, err)
            return None
        if emb.shape != (self.dim,):
            logger.warning("ignoring text embedding cache entry %s of shape %s (expected [%d])",
                           path, tuple(emb.shape), self.dim)  # fmt: skip
            return None
        self._texts[text] = emb
        return emb

    def _store(self, text: str, emb: torch.Tensor) -> None:
        from safetensors.torch import save_file

        emb = emb.detach().float().cpu().contiguous()
        self._texts[text] = emb
        try:
            atomic_write(self._text_path(text), lambda tmp: save_file({"embedding": emb}, tmp))
        except OSError as err:  # a read-only cache costs speed, not the answer
            logger.warning("could not store a text embedding under %s (%s)", self.root, err)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """Text embeddings: N strings -> float32 ``[N, D]``; only texts not seen before are encoded."""
        found = {text: self._lookup(text) for text in dict.fromkeys(check_texts(texts))}
        missing = [text for text, emb in found.items() if emb is None]
        if missing:
            for text, emb in zip(missing, self.load().encode_texts(missing)):
                self._store(text, emb)
                found[text] = self._texts[text]
        return torch.stack([found[text] for text in texts])

    def encode_text(self, text: str) -> torch.Tensor:
        """Text embedding of one string: -> float32 ``[D]``."""
        return self.encode_texts([check_text(text)])[0]


def _card_path(root: Path, identity: str) -> Path:
    return root / "encoders" / f"{identity}.json"


def _read_card(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text())
        if int(card["dim"]) > 0 and int(card["image_size"]) > 0:
            return card
    except (OSError, ValueError, KeyError, TypeError) as err:
        logger.warning("ignoring unreadable encoder card %s (%s)", path, err)
        return None
    logger.warning("ignoring encoder card %s with non-positive sizes", path)
    return None


def cached_encoder(spec: str, root: str | os.PathLike, device: str | torch.device = "cpu") -> ClipEncoder | CachedEncoder:
    """The encoder for ``spec`` with its card and text embeddings kept under ``root`` (a feature
    cache root). With a card already there nothing heavy loads now; otherwise the encoder loads
    (raising :func:`~tspo.features.encoders.load_encoder`'s errors) and its card is written. Specs that
    cannot be identified cheaply return the plain loaded :class:`~tspo.features.encoders.ClipEncoder`."""
    dtype = default_dtype(device)
    identity = encoder_identity(spec, device, dtype)
    if identity is None:
        return load_encoder(spec, device=device, dtype=dtype)
    root = Path(root)
    path = _card_path(root, identity)
    card = _read_card(path)
    if card is not None:
        return CachedEncoder(spec, device, root, identity, card)
    enc = load_encoder(spec, device=device, dtype=dtype)
    card = {"spec": spec, "dim": enc.dim, "image_size": enc.image_size, "dtype": str(dtype),
            "device": torch.device(device).type}  # fmt: skip
    try:
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(card, indent=2) + "\n"))
    except OSError as err:
        logger.warning("could not write the encoder card %s (%s)", path, err)
    return CachedEncoder(spec, device, root, identity, card, encoder=enc)
