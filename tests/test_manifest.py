"""Manifest schema: round trip, validation errors naming line + field, root containment."""

import json

import pytest

from tspo.cli.synth import main as synth_main
from tspo.data_synth import ManifestError, Sample, iter_manifest, load_manifest, write_manifest


def _line(**over):
    base = {"id": "s0", "video": "videos/a.mp4", "question": "What colour is the star?",
            "options": ["red", "green", "blue", "yellow"], "answer": "B", "kind": "general",
            "target_spans_s": [], "evidence_spans_s": [[2.0, 5.0]], "duration_s": 30.0}
    base.update(over)
    return {k: v for k, v in base.items() if v is not ...}


def _write(path, *objs, raw=()):
    lines = [json.dumps(o) for o in objs] + list(raw)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_round_trip_keeps_values_and_relative_paths(tmp_path):
    segs = [{"source": str(tmp_path / "hay" / "h.mp4"), "start_s": 3.0, "end_s": 13.0},
            {"source": str(tmp_path / "clips" / "c.mp4"), "start_s": 0.0, "end_s": 20.0}]
    samples = [
        Sample("a", str(tmp_path / "clips" / "c.mp4"), "Q?", ["x", "y"], "A", "general", [], None, 20.0, {"k": 1}),
        Sample("b", segs, "Q2?", ["x", "y", "z"], "C", "needle", [[10.0, 30.0]], [[12.0, 14.0]], 30.0),
    ]
    path = write_manifest(tmp_path / "m.jsonl", samples)
    raw = [json.loads(line) for line in path.read_text().splitlines()]
    assert raw[0]["video"] == "clips/c.mp4"                # written relative to the manifest
    assert raw[1]["video"][0]["source"] == "hay/h.mp4"
    back = load_manifest(path)
    assert back[0] == samples[0] and back[1] == samples[1]  # resolved back to the same absolute paths
    assert back[1].is_virtual and back[1].answer_text == "z"
    assert back[1].oracle_meta()["target_spans_s"] == [[10.0, 30.0]]


@pytest.mark.parametrize("over, field", [
    ({"answer": "E"}, "answer"),
    ({"answer": "b"}, "answer"),
    ({"options": ["only one"]}, "options"),
    ({"kind": "haystack"}, "kind"),
    ({"duration_s": -1}, "duration_s"),
    ({"duration_s": "30"}, "duration_s"),
    ({"evidence_spans_s": [[5.0, 2.0]]}, "evidence_spans_s"),
    ({"evidence_spans_s": [[25.0, 31.0]]}, "evidence_spans_s"),
    ({"kind": "needle", "target_spans_s": []}, "target_spans_s"),
    ({"question": ""}, "question"),
    ({"video": ""}, "video"),
    ({"video": [{"source": "a.mp4", "start_s": 0, "end_s": 10}]}, "duration_s"),
    ({"video": [{"source": "a.mp4", "start": 0, "end_s": 30}]}, "video[0]"),
    ({"question": ...}, "question"),
    ({"evidnce_spans_s": [[1, 2]]}, "evidnce_spans_s"),
    ({"extra": [1]}, "extra"),
])
def test_bad_field_is_reported_with_line_and_field(tmp_path, over, field):
    path = _write(tmp_path / "m.jsonl", _line(id="ok"), _line(**over))
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    assert "line 2" in str(err.value) and f"field {field!r}" in str(err.value)


def test_malformed_json_duplicates_and_empty(tmp_path):
    path = _write(tmp_path / "m.jsonl", _line(), raw=['{"id": "x", '])
    with pytest.raises(ManifestError, match=r"line 2: not valid JSON"):
        load_manifest(path)
    path = _write(tmp_path / "d.jsonl", _line(id="a"), _line(id="b"), _line(id="a"))
    with pytest.raises(ManifestError, match=r"line 3: field 'id': duplicate id 'a' \(first on line 1\)"):
        load_manifest(path)
    (tmp_path / "e.jsonl").write_text("\n\n")
    with pytest.raises(ManifestError, match="holds no samples"):
        load_manifest(tmp_path / "e.jsonl")
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(tmp_path / "nope.jsonl")


def test_root_resolves_paths_and_refuses_escapes(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    path = _write(tmp_path / "m.jsonl", _line(video="clips/a.mp4"))
    assert load_manifest(path, root=root)[0].video == str(root / "clips" / "a.mp4")
    for bad in ("../secret.mp4", "clips/../../secret.mp4", str(tmp_path / "elsewhere.mp4")):
        path = _write(tmp_path / "m.jsonl", _line(video=bad))
        with pytest.raises(ManifestError, match="outside the root"):
            load_manifest(path, root=root)
    seg = [{"source": "../x.mp4", "start_s": 0, "end_s": 30}]
    with pytest.raises(ManifestError, match="outside the root"):
        load_manifest(_write(tmp_path / "m.jsonl", _line(video=seg)), root=root)
    # without a root, relative paths resolve against the manifest's directory
    assert load_manifest(_write(tmp_path / "m.jsonl", _line(video="../v.mp4")))[0].video == str(tmp_path.parent / "v.mp4")


def test_writer_refuses_duplicates_and_invalid_samples(tmp_path):
    s = Sample("a", "v.mp4", "Q?", ["x", "y"], "A", duration_s=3.0)
    with pytest.raises(ManifestError, match="duplicate id 'a'"):
        write_manifest(tmp_path / "m.jsonl", [s, s])
    bad = Sample("b", "v.mp4", "Q?", ["x", "y"], "C", duration_s=3.0)
    with pytest.raises(ManifestError, match="sample 'b' is invalid: field 'answer'"):
        write_manifest(tmp_path / "m.jsonl", [bad])
    assert not (tmp_path / "m.jsonl").exists()


def test_iter_manifest_reports_every_bad_line(tmp_path):
    path = _write(tmp_path / "m.jsonl", _line(id="a"), _line(id="b", answer="Z"), _line(id="c"), raw=["[1]"])
    items = list(iter_manifest(path))
    assert [n for n, _ in items] == [1, 2, 3, 4]
    assert [isinstance(x, ManifestError) for _, x in items] == [False, True, False, True]


def test_validate_cli(tmp_path, capsys):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "a.mp4").write_bytes(b"x")
    good = _write(tmp_path / "good.jsonl", _line())
    assert synth_main(["validate", str(good), "--check-files"]) == 0
    assert "1 valid sample(s), 0 bad line(s), 0 missing video(s)" in capsys.readouterr().out
    bad = _write(tmp_path / "bad.jsonl", _line(), _line(id="t", video="videos/missing.mp4"), _line(id="u", kind="x"))
    assert synth_main(["validate", str(bad), "--check-files"]) == 1
    cap = capsys.readouterr()
    assert "line 3: field 'kind'" in cap.err and "missing video: t:" in cap.err
    assert "2 valid sample(s), 1 bad line(s), 1 missing video(s)" in cap.out


def test_root_containment_follows_symlinks(tmp_path):
    """A link inside the root that points outside it escapes the root: refused. Links that stay
    inside, and a root that is itself reached through a link, are fine."""
    root, outside = tmp_path / "data", tmp_path / "outside"
    (root / "clips").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(b"x")
    (root / "clips" / "real.mp4").write_bytes(b"x")
    (root / "leak.mp4").symlink_to(outside / "secret.mp4")          # file link out of the root
    (root / "leakdir").symlink_to(outside, target_is_directory=True)  # directory link out of the root
    (root / "ok.mp4").symlink_to(root / "clips" / "real.mp4")       # link that stays inside
    for bad in ("leak.mp4", "leakdir/secret.mp4"):
        with pytest.raises(ManifestError, match="outside the root"):
            load_manifest(_write(tmp_path / "m.jsonl", _line(video=bad)), root=root)
    seg = [{"source": "leakdir/secret.mp4", "start_s": 0, "end_s": 30}]
    with pytest.raises(ManifestError, match="outside the root"):
        load_manifest(_write(tmp_path / "m.jsonl", _line(video=seg)), root=root)
    assert load_manifest(_write(tmp_path / "m.jsonl", _line(video="ok.mp4")), root=root)[0].video == str(root / "ok.mp4")
    alias = tmp_path / "alias"
    alias.symlink_to(root, target_is_directory=True)
    got = load_manifest(_write(tmp_path / "m.jsonl", _line(video="clips/real.mp4")), root=alias)[0].video
    assert got == str(alias / "clips" / "real.mp4")


def test_manifest_schema_imports_without_the_rest_of_data_synth():
    """tspo modules import the schema (tspo.manifest); that must not run the renderer,
    composer or filter, which import tspo modules themselves (no import-time circle)."""
    import subprocess
    import sys

    code = ("import sys, tspo.evaluation.evaluate, tspo.manifest; "
            "heavy = [m for m in ('render', 'needle', 'filter', 'captioners', 'qa') if f'tspo.data_synth.{m}' in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
    from tspo import data_synth

    assert data_synth.compose_needles.__module__ == "tspo.data_synth.needle"   # public names still resolve
