"""Public long-video QA benchmarks -> our manifest :class:`~tspo.data_synth.Sample` objects.

Each reader takes the benchmark's own annotation file(s) as published and the folder that holds
its videos, and returns validated ``kind="general"`` samples (no target spans: these benchmarks
do not say where the answer is, so ``tspo eval`` reports ``target_fraction: null`` for them).
Video paths are made absolute; files are not required to exist until evaluation decodes them
(except for Video-MME, whose annotations carry no duration in seconds — see below).

Fields relied on, per format (anything else is kept under ``extra`` or ignored):

**LongVideoBench** (``lvb_val.json``: a JSON array of objects)
    ``id`` (str, unique) · ``video_path`` (file name under ``videos/``) · ``question`` (str) ·
    ``candidates`` (list[str], option texts, 2..26) · ``correct_choice`` (int, 0-based index into
    ``candidates``; absent in ``lvb_test_wo_gt.json``, which therefore cannot be evaluated) ·
    ``duration`` (float seconds). Kept in ``extra``: ``video_id``, ``duration_group``,
    ``question_category``, ``topic_category``, ``level``. Default video folder: ``<annotation dir>/videos``.

**MLVU** dev, multiple-choice tasks (``MLVU/json/<n>_<task>.json``: a JSON array per task)
    ``video`` (file name under ``MLVU/video/<n>_<task>/``) · ``question`` · ``candidates``
    (list[str]) · ``answer`` (str: the *text* of the right candidate, matched exactly after
    stripping whitespace) · ``duration`` (seconds) · ``question_type`` (kept in ``extra``).
    A folder of task files can be given: files whose entries have no ``candidates`` (the
    open-ended ``8_sub_scene`` / ``9_summary``) are skipped. Default video folder:
    ``<json dir>/../video``. Ids are ``mlvu-<task file stem>-<row>``.

**Video-MME** (``videomme/test-00000-of-00001.parquet`` or the same rows as JSON / JSON Lines)
    ``question_id`` (str, unique) · ``videoID`` (YouTube id; the file is ``<videoID>.mp4``) ·
    ``question`` · ``options`` (list[str] written ``"A. text"``; the ``"A. "`` prefix is stripped)
    · ``answer`` (letter) · ``duration`` (``short``/``medium``/``long``: a category, not seconds;
    kept in ``extra`` with ``domain``, ``sub_category``, ``task_type``, ``video_id``). Durations in
    seconds come from ``durations={videoID: seconds}`` when given, else from probing each video
    file (so the videos must be present). Parquet needs ``pyarrow``. Default video folder:
    ``<annotation dir>/../data``.
"""

from __future__ import annotations

import argparse
import json
import re
import string
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tspo.errors import TSPOError
from tspo.manifest import ManifestError, Sample, parse_sample, write_manifest
from tspo.video import VideoError, probe_video


class BenchmarkFormatError(TSPOError, ValueError):
    """An annotation file does not look like the benchmark format it was read as."""


def _load_rows(path: Path, what: str) -> list[dict]:
    """A JSON array, JSON Lines, or (needs pyarrow) Parquet file -> list of row dicts."""
    if not path.is_file():
        raise BenchmarkFormatError(f"{what} annotation file {str(path)!r} does not exist; pass the path to it")
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise BenchmarkFormatError(
                f"reading {path.name} needs pyarrow (`pip install pyarrow`), or convert it to JSON Lines first"
            ) from None
        return pq.read_table(path).to_pylist()
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchmarkFormatError(f"{what} file {str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise BenchmarkFormatError(f"{what} file {str(path)!r} must hold a list of objects, one per question")
    return rows


def _field(row: Mapping, key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if key not in row:
        raise BenchmarkFormatError(f"{where}: missing field {key!r} (present: {sorted(row)})")
    value = row[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BenchmarkFormatError(f"{where}: field {key!r} has type {type(value).__name__}, expected {kind}")
    return value


def _sample(obj: dict, where: str) -> Sample:
    try:  # the manifest's own validator: what a reader returns always loads back
        return parse_sample(obj, Path.cwd(), contain=False)
    except ManifestError as exc:
        raise BenchmarkFormatError(f"{where}: {exc}") from None


def _check_unique(samples: list[Sample], what: str) -> list[Sample]:
    seen: set[str] = set()
    for s in samples:
        if s.id in seen:
            raise BenchmarkFormatError(f"{what}: duplicate question id {s.id!r}")
        seen.add(s.id)
    if not samples:
        raise BenchmarkFormatError(f"{what}: no multiple-choice questions found")
    return samples


def read_longvideobench(annotation: str | Path, video_root: str | Path | None = None) -> list[Sample]:
    """LongVideoBench ``lvb_val.json`` -> samples (``extra["benchmark"] = "longvideobench"``)."""
    path = Path(annotation)
    root = Path(video_root) if video_root is not None else path.parent / "videos"
    out = []
    for i, row in enumerate(_load_rows(path, "LongVideoBench")):
        where = f"{path.name} entry {i}"
        if "correct_choice" not in row:
            raise BenchmarkFormatError(
                f"{where}: no 'correct_choice' — the LongVideoBench test split has no answers; use lvb_val.json")
        candidates = _field(row, "candidates", where, list)
        choice = _field(row, "correct_choice", where, int)
        if not 0 <= choice < len(candidates):
            raise BenchmarkFormatError(f"{where}: correct_choice {choice} is outside the {len(candidates)} candidates")
        extra = {k: row[k] for k in ("video_id", "duration_group", "question_category", "topic_category", "level")
                 if k in row}
        out.append(_sample({
            "id": str(_field(row, "id", where, (str, int))),
            "video": str((root / _field(row, "video_path", where, str)).absolute()),
            "question": _field(row, "question", where, str), "options": candidates,
            "answer": string.ascii_uppercase[choice], "kind": "general",
            "duration_s": float(_field(row, "duration", where, (int, float))),
            "extra": {"benchmark": "longvideobench", **extra},
        }, where))
    return _check_unique(out, str(path))


def _mlvu_file(path: Path, root: Path, skip_open_ended: bool) -> list[Sample]:
    rows = _load_rows(path, "MLVU")
    if rows and all("candidates" not in r for r in rows):
        if skip_open_ended:
            return []
        raise BenchmarkFormatError(f"{path.name}: entries have no 'candidates' — an open-ended MLVU task, "
                                   "not multiple choice; pass a multiple-choice task file (1_plotQA ... 7_topic_reasoning)")
    out = []
    for i, row in enumerate(rows):
        where = f"{path.name} entry {i}"
        candidates = _field(row, "candidates", where, list)
        answer = _field(row, "answer", where, str).strip()
        matches = [j for j, c in enumerate(candidates) if isinstance(c, str) and c.strip() == answer]
        if len(matches) != 1:
            raise BenchmarkFormatError(f"{where}: answer {answer!r} matches {len(matches)} of the candidates "
                                       f"{candidates!r}; it must match exactly one")
        out.append(_sample({
            "id": f"mlvu-{path.stem}-{i}",
            "video": str((root / path.stem / _field(row, "video", where, str)).absolute()),
            "question": _field(row, "question", where, str), "options": candidates,
            "answer": string.ascii_uppercase[matches[0]], "kind": "general",
            "duration_s": float(_field(row, "duration", where, (int, float))),
            "extra": {"benchmark": "mlvu", "task": path.stem, "question_type": row.get("question_type")},
        }, where))
    return out


def read_mlvu(annotation: str | Path, video_root: str | Path | None = None) -> list[Sample]:
    """MLVU dev: one task file (``1_plotQA.json``) or the ``json/`` folder of them -> samples."""
    path = Path(annotation)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise BenchmarkFormatError(f"MLVU folder {str(path)!r} holds no *.json task files")
        base = path
    else:
        files, base = [path], path.parent
    root = Path(video_root) if video_root is not None else base.parent / "video"
    out = [s for f in files for s in _mlvu_file(f, root, skip_open_ended=path.is_dir())]
    return _check_unique(out, str(path))


_OPTION_PREFIX = re.compile(r"^\s*\(?([A-Z])[.):]\s*")


def read_videomme(annotation: str | Path, video_root: str | Path | None = None,
                  durations: Mapping[str, float] | None = None) -> list[Sample]:
    """Video-MME rows (parquet / JSON / JSONL) -> samples; durations from ``durations`` or the videos."""
    path = Path(annotation)
    root = Path(video_root) if video_root is not None else path.parent.parent / "data"
    probed: dict[str, float] = dict(durations or {})
    out = []
    for i, row in enumerate(_load_rows(path, "Video-MME")):
        qid = str(_field(row, "question_id", path.name + f" entry {i}", (str, int)))
        where = f"{path.name} question {qid}"
        options = _field(row, "options", where, list)
        texts = []
        for j, opt in enumerate(options):
            m = _OPTION_PREFIX.match(opt) if isinstance(opt, str) else None
            if m is None or m.group(1) != string.ascii_uppercase[j]:
                raise BenchmarkFormatError(f"{where}: option {j} {opt!r} must start with "
                                           f"'{string.ascii_uppercase[j]}. ' as Video-MME writes them")
            texts.append(opt[m.end():])
        vid = _field(row, "videoID", where, str)
        video = (root / f"{vid}.mp4").absolute()
        if vid not in probed:
            try:
                probed[vid] = probe_video(video).duration_s
            except VideoError as exc:
                raise BenchmarkFormatError(
                    f"{where}: Video-MME gives no duration in seconds, so it is read from the video, and {exc}; "
                    "pass video_root (--video-root) or durations={videoID: seconds}") from None
        extra = {k: row[k] for k in ("video_id", "duration", "domain", "sub_category", "task_type") if k in row}
        if "duration" in extra:
            extra["duration_category"] = extra.pop("duration")
        out.append(_sample({
            "id": qid, "video": str(video), "question": _field(row, "question", where, str), "options": texts,
            "answer": _field(row, "answer", where, str).strip(), "kind": "general",
            "duration_s": float(probed[vid]), "extra": {"benchmark": "videomme", **extra},
        }, where))
    return _check_unique(out, str(path))


READERS: dict[str, Callable[..., list[Sample]]] = {
    "longvideobench": read_longvideobench,
    "mlvu": read_mlvu,
    "videomme": read_videomme,
}


def read_benchmark(name: str, annotation: str | Path, video_root: str | Path | None = None) -> list[Sample]:
    """Dispatch on a benchmark name (``longvideobench``, ``mlvu``, ``videomme``)."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in READERS:
        raise BenchmarkFormatError(f"unknown benchmark {name!r}; known: {', '.join(READERS)}")
    return READERS[key](annotation, video_root)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tspo.evaluation.readers BENCHMARK ANNOTATION --out manifest.jsonl [--video-root DIR]``."""
    p = argparse.ArgumentParser(prog="python -m tspo.evaluation.readers", description="convert a benchmark to a tspo manifest")
    p.add_argument("benchmark", choices=sorted(READERS))
    p.add_argument("annotation", help="annotation file (or MLVU json/ folder)")
    p.add_argument("--video-root", default=None, help="folder holding the videos (default: the benchmark's layout)")
    p.add_argument("--out", required=True, help="manifest (.jsonl) to write")
    args = p.parse_args(argv)
    samples = read_benchmark(args.benchmark, args.annotation, args.video_root)
    write_manifest(args.out, samples)
    print(f"wrote {len(samples)} samples to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
