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

A filter-family agent (:class:`~tspo.agents.FilterAgent`) exports as :class:`ExportableFilterAgent`,
with two more inputs: ``options float32[N, D]`` (a multiple-choice question's option embeddings, N a
dynamic axis) and ``option_mask float32[N]`` (1 = a real option, 0 = padding; a question without
options passes one zero row with mask 0). Its set head is not part of the graph: the question-dependent
suppression radius is ``nms_radius`` where ``set_head(text) > 0``, else 0 (``config.json``'s agent); the
``shot`` rule's cuts come from ``features`` alone (:func:`tspo.agents.rules.shot_ids`).
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

from tspo.agents import FilterAgent, TemporalAgent
from tspo.errors import TSPOError
from tspo.selection.selector import SelectorConfigError, load_selector_agent

FORMATS = ("torchscript", "onnx")
INPUT_NAMES = ("features", "text")
OPTION_INPUT_NAMES = ("options", "option_mask")  # filter family only
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


class ExportableFilterAgent(nn.Module):
    """``(features [T, D], text [D], options [N, D], option_mask [N]) -> S [T]``: the filter agent's maths
    (:mod:`tspo.agents.filter`) on top of :class:`ExportableAgent`, with export-friendly ops."""

    def __init__(self, agent: FilterAgent) -> None:
        super().__init__()
        self.paper = ExportableAgent(agent)
        self.filter = agent.filter
        self.radius, self.taps = int(agent.filter_radius), int(agent.taps)

    def forward(self, features: torch.Tensor, text: torch.Tensor, options: torch.Tensor,
                option_mask: torch.Tensor) -> torch.Tensor:
        base = self.paper(features, text)
        unit = features / features.norm(2, -1, True).clamp_min(1e-8)
        question = unit @ (text / text.norm().clamp_min(1e-8))                                     # [T]
        cos = unit @ (options / options.norm(2, -1, True).clamp_min(1e-8)).t()           # [T, N]
        valid = option_mask > 0.5
        best = cos.masked_fill(~valid[None, :], float("-inf")).max(dim=1).values
        best = torch.where(valid.any(), best, torch.zeros_like(best))
        profiles = torch.stack([_standardise(question), _standardise(best)], dim=0)[None]          # [1, 2, T]
        kernels = self.filter(text).reshape(1, 2, self.taps)
        return base + F.conv1d(profiles, kernels, padding=self.radius)[0, 0]


def _standardise(profile: torch.Tensor) -> torch.Tensor:
    """:func:`tspo.agents.filter.standardise` of one row [T], written with ops the exporters keep symbolic."""
    centred = profile - profile.mean()
    return centred / (centred * centred).mean().sqrt().clamp_min(1e-6)


def exportable(agent: TemporalAgent) -> nn.Module:
    """The export-friendly module of an agent of any family (:mod:`tspo.agents.families`)."""
    agent = agent.eval().cpu()
    return (ExportableFilterAgent(agent) if isinstance(agent, FilterAgent) else ExportableAgent(agent)).eval()


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
    module = exportable(agent)
    takes_options = isinstance(module, ExportableFilterAgent)
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
    names, axes = list(INPUT_NAMES), {"features": {0: "T"}, OUTPUT_NAME: {0: "T"}}
    if takes_options:
        example = (*example, torch.ones(2, agent.dim), torch.ones(2))
        names += list(OPTION_INPUT_NAMES)
        axes.update({name: {0: "N"} for name in OPTION_INPUT_NAMES})
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript-based exporter keeps T symbolic without needing onnxscript; the shape
        # checks in forward() are traced as constants, which is what they are (D is fixed).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            module, example, str(out), dynamo=False, opset_version=opset,
            input_names=names, output_names=[OUTPUT_NAME], dynamic_axes=axes,
        )  # fmt: skip
    model = onnx.load(str(out))
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(out))
    return out


def run_exported(path: str | Path, features: np.ndarray, text: np.ndarray, options: np.ndarray | None = None,
                 option_mask: np.ndarray | None = None) -> np.ndarray:
    """Scores float32[T] from an exported file (format told by its suffix: .onnx, else TorchScript).
    ``options`` [N, D] / ``option_mask`` [N] (1 = real option) feed a filter-family export (None: no
    options); a paper-agent export has no such inputs and ignores them."""
    path = Path(path)
    features = np.asarray(features, dtype=np.float32)
    text = np.asarray(text, dtype=np.float32)
    if options is None:
        options, option_mask = np.zeros((1, text.shape[-1]), np.float32), np.zeros(1, np.float32)
    options = np.asarray(options, dtype=np.float32)
    option_mask = np.ones(len(options), np.float32) if option_mask is None else np.asarray(option_mask, np.float32)
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {"features": features, "text": text}
        if len(session.get_inputs()) == 4:
            feed.update(options=options, option_mask=option_mask)
        return session.run([OUTPUT_NAME], feed)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path))
    args = [torch.from_numpy(features), torch.from_numpy(text)]
    if len(module.forward.schema.arguments) == 5:  # self, features, text, options, option_mask
        args += [torch.from_numpy(options), torch.from_numpy(option_mask)]
    with torch.no_grad():
        return module(*args).numpy()


def check_round_trip(
    agent: TemporalAgent, path: str | Path, lengths: tuple[int, ...] = (1, 5, 64, 200), seed: int = 0
) -> float:
    """Max |exported − PyTorch| score difference over random inputs of each length T."""
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for n in lengths:
        features = torch.randn(n, agent.dim, generator=generator)
        text = torch.randn(agent.dim, generator=generator)
        options = torch.randn(3, agent.dim, generator=generator)
        mask = torch.tensor([True, True, False])
        with torch.no_grad():
            expected = agent(features, text, options, mask).numpy()
        got = run_exported(path, features.numpy(), text.numpy(), options.numpy(), mask.float().numpy())
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
