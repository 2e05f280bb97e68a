"""``tspo export SELECTOR_DIR --format torchscript|onnx --out FILE``: the temporal agent alone.

The exported graph maps ``(features float32[T, D], text float32[D]) -> scores float32[T]`` for any
T (``T`` is a dynamic axis; T smaller than the attention window works too). The CLIP encoder is
not part of it: compute ``features`` (projected image embeddings of the candidate frames) and
``text`` with the encoder named in the selector's ``config.json``.

:class:`ExportableAgent` re-states the agent's maths with ops that both TorchScript and the ONNX exporter
handle for a symbolic T: the window of frame j is gathered with one index tensor
``j − w//2 + m`` (out-of-range keys masked with −1e6, as in the agent) instead of the agent's
blocked ``unfold``, whose block count is a Python int fixed at trace time. It shares the agent's
weights, and the round-trip tests hold it to the agent's scores.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tspo.agents import TemporalAgent
from tspo.errors import TSPOError
from tspo.selection.selector import SelectorConfigError, load_selector_agent

FORMATS = ("torchscript", "onnx")
INPUT_NAMES = ("features", "text")
OUTPUT_NAME = "scores"


class ExportError(TSPOError, ValueError):
    """A selector, format or output path that cannot be exported."""


class ExportableAgent(nn.Module):
    """``(features [T, D], text [D]) -> S [T]``, the agent's math with export-friendly ops."""

    def __init__(self, agent: TemporalAgent) -> None:
        super().__init__()
        self.dim, self.heads, self.window = int(agent.dim), int(agent.heads), int(agent.window)
        self.q, self.k, self.v, self.mlp = agent.q, agent.k, agent.v, agent.mlp
        self.scale = float((self.dim // self.heads) ** -0.5)
        # Key offsets of the window relative to the query frame: -w//2 ... w-1-w//2.
        self.register_buffer("offsets", torch.arange(self.window) - self.window // 2, persistent=False)
        div = torch.exp(torch.arange(0, self.dim, 2, dtype=torch.float32) * (-math.log(10000.0) / self.dim))
        self.register_buffer("div", div, persistent=False)

    def forward(self, features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        if features.dim() != 2 or features.shape[1] != self.dim:
            raise ValueError("features must be float32[T, D] with D the agent's dim")
        if text.dim() != 1 or text.shape[0] != self.dim:
            raise ValueError("text must be float32[D] with D the agent's dim")
        n = features.shape[0]
        frames = torch.arange(n, device=features.device)
        angles = (frames.to(features.dtype) / n)[:, None] * self.div[None, :]
        pe = torch.stack([angles.sin(), angles.cos()], dim=-1).reshape(n, self.dim)  # sin/cos interleaved
        x = features + pe
        head_dim = self.dim // self.heads
        q = self.q(x).reshape(n, self.heads, head_dim)
        k = self.k(x).reshape(n, self.heads, head_dim)
        v = self.v(x).reshape(n, self.heads, head_dim)
        idx = frames[:, None] + self.offsets[None, :]  # [T, w] key frame of each window slot
        valid = (idx >= 0) & (idx < n)
        idx = torch.where(valid, idx, torch.zeros_like(idx))
        logits = torch.einsum("thd,twhd->thw", q, k[idx]) * self.scale
        logits = logits.masked_fill(~valid[:, None, :], -1e6)
        attn = torch.einsum("thw,twhd->thd", logits.softmax(dim=-1), v[idx]).reshape(n, self.dim)
        event = self.mlp(attn) + features
        text_row = text[None, :]
        return F.cosine_similarity(event, text_row, dim=-1) + F.cosine_similarity(features, text_row, dim=-1)


def load_agent(selector: str | Path) -> tuple[TemporalAgent, dict]:
    """The agent (and config) of a selector directory or hub id, without loading its encoder."""
    try:
        return load_selector_agent(selector)
    except SelectorConfigError as err:
        raise ExportError(str(err)) from err


def export_agent(
    agent: TemporalAgent, out: str | Path, fmt: str, config: dict | None = None, opset: int = 17
) -> Path:
    """Write ``agent`` as TorchScript (``torch.jit.load``) or ONNX (onnxruntime) to ``out``."""
    if fmt not in FORMATS:
        raise ExportError(f"--format must be one of {FORMATS}, got {fmt!r}")
    out = Path(out)
    if out.is_dir():
        raise ExportError(f"--out {str(out)!r} is a directory; pass a file name like agent.{_suffix(fmt)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    module = ExportableAgent(agent.eval().cpu()).eval()
    meta = {"tspo_config": json.dumps(config or {"agent": agent.config}, sort_keys=True)}
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", FutureWarning
            )  # jit is deprecated upstream, still the portable format
            scripted = torch.jit.script(module)
            scripted.save(str(out), _extra_files={k + ".json": v for k, v in meta.items()})
        return out
    try:
        import onnx
    except ImportError as err:
        raise ImportError("ONNX export needs the onnx extra: pip install 'tspo[onnx]'") from err
    example = (torch.zeros(max(agent.window + 1, 16), agent.dim), torch.ones(agent.dim))
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript-based exporter keeps T symbolic without needing onnxscript; the shape
        # checks in forward() are traced as constants, which is what they are (D is fixed).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            module, example, str(out), dynamo=False, opset_version=opset,
            input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME],
            dynamic_axes={"features": {0: "T"}, OUTPUT_NAME: {0: "T"}},
        )  # fmt: skip
    model = onnx.load(str(out))
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(out))
    return out


def run_exported(path: str | Path, features: np.ndarray, text: np.ndarray) -> np.ndarray:
    """Scores float32[T] from an exported file (format told by its suffix: .onnx, else TorchScript)."""
    path = Path(path)
    features = np.asarray(features, dtype=np.float32)
    text = np.asarray(text, dtype=np.float32)
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run([OUTPUT_NAME], {"features": features, "text": text})[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path))
    with torch.no_grad():
        return module(torch.from_numpy(features), torch.from_numpy(text)).numpy()


def check_round_trip(
    agent: TemporalAgent, path: str | Path, lengths: tuple[int, ...] = (1, 5, 64, 200), seed: int = 0
) -> float:
    """Max |exported − PyTorch| score difference over random inputs of each length T."""
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for n in lengths:
        features = torch.randn(n, agent.dim, generator=generator)
        text = torch.randn(agent.dim, generator=generator)
        with torch.no_grad():
            expected = agent(features, text).numpy()
        got = run_exported(path, features.numpy(), text.numpy())
        if got.shape != expected.shape:
            raise ExportError(
                f"exported {str(path)!r} returned shape {got.shape} for T={n}, expected {expected.shape}"
            )
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def _suffix(fmt: str) -> str:
    return "onnx" if fmt == "onnx" else "pt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tspo export",
        description="Export a selector's temporal agent: (features [T,D], text [D]) -> scores [T], dynamic T.",
        epilog="example:\n  tspo export runs/exp1/selector --format onnx --out agent.onnx", formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "selector", help="selector directory (save_pretrained / tspo train) or hub id org/name"
    )
    parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    parser.add_argument("--out", required=True, help="output file (e.g. agent.pt or agent.onnx)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--no-check", action="store_true", help="skip the round-trip check against PyTorch")
    parser.add_argument(
        "--atol", type=float, default=1e-4, help="round-trip tolerance on scores (default 1e-4)"
    )
    args = parser.parse_args(argv)
    try:
        agent, config = load_agent(args.selector)
        out = export_agent(agent, args.out, args.fmt, config=config, opset=args.opset)
        if not args.no_check:
            err = check_round_trip(agent, out)
            if err > args.atol:
                print(
                    f"tspo export: round-trip mismatch {err:.2e} > atol {args.atol:g} in {out}",
                    file=sys.stderr,
                )
                return 1
            print(f"wrote {out} ({args.fmt}); round-trip max |diff| = {err:.2e} over T in (1, 5, 64, 200)")
        else:
            print(f"wrote {out} ({args.fmt})")
    except (ValueError, ImportError, FileNotFoundError) as err:
        print(f"tspo export: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
