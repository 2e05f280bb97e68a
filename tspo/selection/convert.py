"""``tspo convert``: the official TSPO-0.4B release (or any checkpoint in its layout) -> a selector directory.

The authors publish TSPO-0.4B on the Hugging Face Hub as ``hzf666/TSPO-0.4B`` (CLIP ViT-L/14 plus the
temporal agent, whose weights sit under ``selector.*`` / ``multiModal_align.*``). Conversion keeps the
agent only, reads the file with ``torch.load(weights_only=True)`` (or safetensors) and writes
``model.safetensors`` + ``config.json`` naming the CLIP encoder the agent was trained on
(``ViT-L-14:openai``, loaded by tspo itself).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tspo.agents import PublishedCheckpointError, TemporalAgent
from tspo.errors import TSPOError
from tspo.network import is_offline
from tspo.selection.hub import _REPO_ID
from tspo.selection.selector import write_selector_dir

OFFICIAL_ID = "hzf666/TSPO-0.4B"
OFFICIAL_ENCODER = "ViT-L-14:openai"
CHECKPOINT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth")

EXAMPLES = f"""examples:
  tspo convert --out tspo-0.4b                      # downloads {OFFICIAL_ID} (needs internet once)
  tspo convert path/to/TSPO-0.4B --out tspo-0.4b    # a folder or file you downloaded yourself
  tspo select clip.mp4 "When does the dog jump?" --selector tspo-0.4b"""


class ConvertError(TSPOError, ValueError):
    """A source that holds no TSPO selector, or one that cannot be fetched (the message says what to get)."""


def _download(repo_id: str) -> Path:
    """The release's snapshot folder (download or HF cache); offline, an error naming what to fetch."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError as err:
        raise ConvertError(f"fetching {repo_id!r} needs huggingface_hub: pip install 'tspo[hf]'") from err
    offline = is_offline()
    try:
        return Path(snapshot_download(repo_id, local_files_only=offline, library_name="tspo",
                                      allow_patterns=[*CHECKPOINT_PATTERNS, "*.json"]))  # fmt: skip
    except LocalEntryNotFoundError as err:
        raise ConvertError(
            f"the TSPO checkpoint {repo_id!r} is not in the local Hugging Face cache"
            f"{' and HF_HUB_OFFLINE=1 forbids downloading it' if offline else ' and could not be downloaded'}. "
            f"On a machine with internet: `hf download {repo_id} --local-dir tspo-0.4b-release`, copy that folder "
            "here and run `tspo convert tspo-0.4b-release --out DIR` (the CLIP weights ViT-L-14:openai are needed "
            "too when selecting: see README, Real CLIP weights)"
        ) from err


def find_checkpoint(source: Path) -> tuple[Path, object]:
    """(file, TemporalAgent) of the first checkpoint under ``source`` that holds a TSPO selector."""
    files = [source] if source.is_file() else sorted(p for pat in CHECKPOINT_PATTERNS for p in source.rglob(pat))
    problems = []
    for path in files:
        try:
            return path, TemporalAgent.load_published(path)
        except (PublishedCheckpointError, OSError, RuntimeError, ValueError) as err:
            problems.append(f"{path.name}: {err}"[:200])
    raise ConvertError(
        f"no TSPO selector weights in {str(source)!r} (looked at {len(files)} checkpoint file(s): "
        f"{'; '.join(problems) or 'none found'}); pass the release folder or its selector checkpoint"
    )


def convert(source: str | None, out: str | Path, encoder: str = OFFICIAL_ENCODER) -> Path:
    """Write a selector directory at ``out`` from ``source``: a checkpoint file, a folder holding one,
    a hub id, or None for the official release ``hzf666/TSPO-0.4B``."""
    source = source or OFFICIAL_ID
    local = Path(source).expanduser()
    if not local.exists():
        if not _REPO_ID.match(source):  # '/typo', '../x', 'a b/c' are paths that do not exist, not hub ids
            raise ConvertError(f"{source!r} is neither a file/folder here nor a hub id 'org/name'")
        local = _download(source)
    path, agent = find_checkpoint(local)
    return write_selector_dir(out, agent, {"encoder": encoder, "converted_from": f"{source}:{path.name}"})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tspo convert", description=__doc__.split("\n\n")[0], epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("source", nargs="?", default=None,
                   help=f"checkpoint file, folder holding one, or hub id (default: {OFFICIAL_ID})")
    p.add_argument("--out", required=True, help="selector directory to write")
    p.add_argument("--encoder", default=OFFICIAL_ENCODER,
                   help=f"encoder spec stored in the config (default {OFFICIAL_ENCODER}, the release's CLIP)")
    args = p.parse_args(argv)
    try:
        out = convert(args.source, args.out, args.encoder)
    except ConvertError as err:
        print(f"tspo convert: error: {err}", file=sys.stderr)
        return 1
    print(f"wrote selector {out} (use: tspo select VIDEO QUESTION --selector {out})")
    return 0
