"""`tspo` command line: one entry point, one module per subcommand.

Each subcommand module exposes ``main(argv: list[str] | None) -> int``; importing it lazily keeps
``tspo --help`` fast and lets a subcommand's heavy dependencies (Lightning, transformers) load only
when that subcommand runs.
"""

from __future__ import annotations

import importlib
import sys

from tspo import __version__
from tspo.errors import TSPOError

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "select": ("tspo.cli.select", "pick the k frames of a video that matter for a question"),
    "synth": ("tspo.cli.synth", "render synthetic clips, compose needle videos, filter, validate"),
    "train": ("tspo.cli.train", "train the temporal agent with TSPO (LightningCLI)"),
    "features": ("tspo.cli.features", "extract a manifest's candidate features once, across workers and GPUs"),
    "eval": ("tspo.cli.eval", "compare selection methods on a manifest with an oracle"),
    "demo": ("tspo.cli.demo", "offline end-to-end demo: synth -> train -> eval -> report"),
    "export": ("tspo.cli.export", "export a trained agent to TorchScript or ONNX"),
    "plot": ("tspo.cli.plot", "redraw training curves, an eval summary or a selection from files"),
    "convert": ("tspo.cli.convert", "turn the official TSPO-0.4B release into a selector directory"),
}


def _usage() -> str:
    lines = ["usage: tspo SUBCOMMAND [ARGS...]", "", "subcommands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines += ["", "`tspo SUBCOMMAND --help` for the arguments and examples of one subcommand; `tspo --version`.",
              "example: tspo select clip.mp4 \"When does the dog jump?\" -k 8 --encoder tiny-random"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    if argv[0] in {"-V", "--version"}:
        print(f"tspo {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"tspo: unknown subcommand {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    try:
        return int(module.main(rest) or 0)
    except TSPOError as err:
        # A problem tspo detected and explained: the explanation, not a traceback, on stderr.
        print(f"tspo {name}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
