"""JSON Lines manifest of QA samples: schema, validating loader, writer.

One sample per line::

    {"id": "clip-00000", "video": "clips/clip-00000.mp4" | [{"source": ..., "start_s": a, "end_s": b}, ...],
     "question": "...", "options": ["...", ...], "answer": "B", "kind": "general" | "needle",
     "target_spans_s": [[a, b], ...], "evidence_spans_s": [[a, b], ...] | null, "duration_s": 123.0,
     "extra": {...}}

Relative paths are resolved against a root directory: the ``root`` a user gives (then every path,
absolute ones included, must lie inside it, and one that escapes is refused), or, without one, the
manifest's own directory (so a manifest and the videos beside it can move together). Times are
seconds on the sample's timeline (for a virtual video: the composed, back-to-back timeline).
"""

from __future__ import annotations

import json
import math
import os
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tspo.errors import TSPOError

KINDS = ("general", "needle")
FIELDS = ("id", "video", "question", "options", "answer", "kind", "target_spans_s", "evidence_spans_s",
          "duration_s", "extra")
REQUIRED = ("id", "video", "question", "options", "answer", "kind", "duration_s")
SEGMENT_KEYS = ("source", "start_s", "end_s")
# Spans may overshoot the duration by float noise from JSON round trips, never by more.
_TIME_TOL = 1e-6


class ManifestError(TSPOError, ValueError):
    """A manifest line (or the file) breaks the schema; the message names the line and the field."""


@dataclass
class Sample:
    """One QA sample. ``video`` is a path or a virtual video (list of ``{source, start_s, end_s}``)."""

    id: str
    video: str | list[dict]
    question: str
    options: list[str]
    answer: str
    kind: str = "general"
    target_spans_s: list[list[float]] = field(default_factory=list)
    evidence_spans_s: list[list[float]] | None = None
    duration_s: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def is_virtual(self) -> bool:
        return not isinstance(self.video, str)

    @property
    def answer_index(self) -> int:
        return string.ascii_uppercase.index(self.answer)

    @property
    def answer_text(self) -> str:
        return self.options[self.answer_index]

    def sources(self) -> list[str]:
        """Every video file this sample reads (one for a plain video)."""
        if isinstance(self.video, str):
            return [self.video]
        return [seg["source"] for seg in self.video]

    def oracle_meta(self) -> dict[str, Any]:
        """The fields an oracle's ``OracleQuery.meta`` carries (the simulated oracle reads these)."""
        meta = {"answer": self.answer, "kind": self.kind, "evidence_spans_s": self.evidence_spans_s,
                "target_spans_s": self.target_spans_s, "duration_s": self.duration_s}
        # Per-question-kind coverage (synthetic data): what the selection must show, per evidence group.
        meta.update({k: self.extra[k] for k in ("coverage", "evidence_groups_s", "qa_kind") if k in self.extra})
        return meta

    def to_json(self, base_dir: str | Path | None = None) -> dict[str, Any]:
        """A JSON-ready dict; paths inside ``base_dir`` are written relative to it."""
        def rel(p: str) -> str:
            return _relative(p, base_dir)

        video: str | list[dict]
        if isinstance(self.video, str):
            video = rel(self.video)
        else:
            video = [{"source": rel(s["source"]), "start_s": float(s["start_s"]), "end_s": float(s["end_s"])}
                     for s in self.video]
        return {"id": self.id, "video": video, "question": self.question, "options": list(self.options),
                "answer": self.answer, "kind": self.kind,
                "target_spans_s": [[float(a), float(b)] for a, b in self.target_spans_s],
                "evidence_spans_s": None if self.evidence_spans_s is None
                else [[float(a), float(b)] for a, b in self.evidence_spans_s],
                "duration_s": float(self.duration_s), "extra": self.extra}


def _relative(path: str, base_dir: str | Path | None) -> str:
    """``path`` relative to ``base_dir`` (with ``..`` when outside it), or unchanged without a base."""
    if base_dir is None:
        return str(path)
    return os.path.relpath(os.path.abspath(path), os.path.abspath(base_dir))


def _resolve(path: str, root: Path, contain: bool) -> str:
    """Absolute path of ``path`` against ``root``; refuse an escape when ``contain``.

    Containment is checked on the real paths (symlinks followed, on both sides), so a link inside
    the root that points outside it is refused; the returned path keeps the manifest's spelling.
    """
    joined = Path(os.path.normpath(root / path))
    if contain:
        real, real_root = joined.resolve(), root.resolve()
        try:
            real.relative_to(real_root)
        except ValueError:
            raise ManifestError(
                f"path {path!r} resolves to {real}, outside the root {real_root}; "
                "move the file under the root or pass a root that contains it") from None
    return str(joined)


def _bad(field_: str, msg: str) -> ManifestError:
    return ManifestError(f"field {field_!r}: {msg}")


def _number(value: Any, field_: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(field_, f"expected a finite number of seconds, got {value!r}")
    return float(value)


def _spans(value: Any, field_: str, duration: float) -> list[list[float]]:
    if not isinstance(value, list):
        raise _bad(field_, f"expected a list of [start_s, end_s] pairs, got {type(value).__name__}")
    out = []
    for i, span in enumerate(value):
        if not isinstance(span, list | tuple) or len(span) != 2:
            raise _bad(field_, f"item {i} must be a pair [start_s, end_s], got {span!r}")
        a, b = _number(span[0], f"{field_}[{i}]"), _number(span[1], f"{field_}[{i}]")
        if not 0.0 <= a < b <= duration + _TIME_TOL:
            raise _bad(field_, f"item {i} [{a}, {b}] must satisfy 0 <= start < end <= duration_s ({duration})")
        out.append([a, b])
    return out


def _segments(value: list, root: Path, contain: bool) -> list[dict]:
    if not value:
        raise _bad("video", "a virtual video needs at least one segment")
    out = []
    for i, seg in enumerate(value):
        where = f"video[{i}]"
        if not isinstance(seg, dict):
            raise _bad(where, f"a segment must be an object {{source, start_s, end_s}}, got {seg!r}")
        missing = [k for k in SEGMENT_KEYS if k not in seg]
        unknown = sorted(set(seg) - set(SEGMENT_KEYS))
        if missing or unknown:
            raise _bad(where, f"segment keys must be exactly {list(SEGMENT_KEYS)} (missing {missing}, "
                              f"unknown {unknown})")
        if not isinstance(seg["source"], str) or not seg["source"]:
            raise _bad(f"{where}.source", f"expected a non-empty path, got {seg['source']!r}")
        a, b = _number(seg["start_s"], f"{where}.start_s"), _number(seg["end_s"], f"{where}.end_s")
        if not 0.0 <= a < b:
            raise _bad(where, f"needs 0 <= start_s < end_s, got [{a}, {b}]")
        out.append({"source": _resolve(seg["source"], root, contain), "start_s": a, "end_s": b})
    return out


def parse_sample(obj: Any, root: str | Path, contain: bool = True) -> Sample:
    """Validate one decoded JSON object and build a :class:`Sample` with absolute paths."""
    root = Path(os.path.abspath(root))
    if not isinstance(obj, dict):
        raise ManifestError(f"a line must be a JSON object, got {type(obj).__name__}")
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        raise _bad(missing[0], f"missing (required fields: {', '.join(REQUIRED)})")
    unknown = sorted(set(obj) - set(FIELDS))
    if unknown:
        raise _bad(unknown[0], f"unknown field; known fields are {', '.join(FIELDS)} "
                               "(put custom data under 'extra')")
    sid = obj["id"]
    if not isinstance(sid, str) or not sid.strip():
        raise _bad("id", f"expected a non-empty string, got {sid!r}")
    duration = _number(obj["duration_s"], "duration_s")
    if duration <= 0:
        raise _bad("duration_s", f"must be > 0, got {duration}")
    video = obj["video"]
    if isinstance(video, str) and video:
        video_out: str | list[dict] = _resolve(video, root, contain)
    elif isinstance(video, list):
        video_out = _segments(video, root, contain)
        total = sum(s["end_s"] - s["start_s"] for s in video_out)
        if abs(total - duration) > 1e-3:
            raise _bad("duration_s", f"{duration} differs from the segments' total length {total}")
    else:
        raise _bad("video", f"expected a path or a list of segments, got {video!r}")
    question = obj["question"]
    if not isinstance(question, str) or not question.strip():
        raise _bad("question", f"expected a non-empty string, got {question!r}")
    options = obj["options"]
    if (not isinstance(options, list) or not 2 <= len(options) <= 26
            or not all(isinstance(o, str) and o.strip() for o in options)):
        raise _bad("options", f"expected 2..26 non-empty strings, got {options!r}")
    letters = string.ascii_uppercase[: len(options)]
    answer = obj["answer"]
    if not isinstance(answer, str) or len(answer) != 1 or answer not in letters:
        raise _bad("answer", f"expected one letter of {letters[0]}..{letters[-1]} "
                             f"({len(options)} options), got {answer!r}")
    kind = obj["kind"]
    if kind not in KINDS:
        raise _bad("kind", f"expected one of {KINDS}, got {kind!r}")
    target = _spans(obj.get("target_spans_s") or [], "target_spans_s", duration)
    if kind == "needle" and not target:
        raise _bad("target_spans_s", "a needle sample needs at least one target span")
    evidence = obj.get("evidence_spans_s")
    evidence = None if evidence is None else _spans(evidence, "evidence_spans_s", duration)
    extra = obj.get("extra") or {}
    if not isinstance(extra, dict):
        raise _bad("extra", f"expected an object, got {type(extra).__name__}")
    return Sample(id=sid, video=video_out, question=question, options=list(options), answer=answer,
                  kind=kind, target_spans_s=target, evidence_spans_s=evidence, duration_s=duration,
                  extra=extra)


def iter_manifest(path: str | Path, root: str | Path | None = None) -> Iterator[tuple[int, Sample | ManifestError]]:
    """Yield ``(line_number, sample or error)`` for every non-blank line; errors name file, line, field."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest {path} does not exist or is not a file; pass a JSON Lines file")
    base = Path(path.parent if root is None else root)
    seen: dict[str, int] = {}
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.readlines()
    except UnicodeDecodeError:
        raise ManifestError(
            f"manifest {path} is not a text file (a video?); a manifest is JSON Lines, one sample per line "
            "(`tspo synth render --out DIR` writes DIR/manifest.jsonl)"
        ) from None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ManifestError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
            sample = parse_sample(obj, base, contain=root is not None)
            if sample.id in seen:
                raise _bad("id", f"duplicate id {sample.id!r} (first on line {seen[sample.id]}); "
                                 "ids must be unique")
            seen[sample.id] = lineno
            yield lineno, sample
        except ManifestError as exc:
            yield lineno, ManifestError(f"{path} line {lineno}: {exc}")


def load_manifest(path: str | Path, root: str | Path | None = None) -> list[Sample]:
    """Load and validate a manifest; raise :class:`ManifestError` on the first bad line.

    ``root``: directory that relative paths resolve against and that every path must stay inside;
    ``None`` resolves against the manifest's directory without a containment check.
    """
    samples = []
    for _, item in iter_manifest(path, root):
        if isinstance(item, ManifestError):
            raise item
        samples.append(item)
    if not samples:
        raise ManifestError(f"manifest {path} holds no samples; it needs one JSON object per line")
    return samples


def write_manifest(path: str | Path, samples: Sequence[Sample], relative_to: str | Path | None = "auto") -> Path:
    """Write ``samples`` as JSON Lines (validating each); paths relative to the manifest's directory.

    ``relative_to=None`` keeps the paths as they are in the samples.
    """
    path = Path(path)
    base = path.parent if relative_to == "auto" else relative_to
    ids: set[str] = set()
    lines = []
    for s in samples:
        if s.id in ids:
            raise ManifestError(f"duplicate id {s.id!r} while writing {path}; ids must be unique")
        ids.add(s.id)
        obj = s.to_json(base)
        try:  # write only what the loader accepts
            parse_sample(obj, base if base is not None else Path.cwd(), contain=False)
        except ManifestError as exc:
            raise ManifestError(f"sample {s.id!r} is invalid: {exc}") from None
        lines.append(json.dumps(obj, ensure_ascii=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(path)
    return path
