"""select_frames cost: first call vs a cached second question; extraction memory for 1 hour.

Issue #2 targets: a second call with a new question (cache hit: no decode/encode) costs <= 3x
text-encode + agent alone; candidate extraction of a 1-hour 30 fps 640x360 video at 1 fps
peaks below 1.5 GB.
Run: python -m benchmarks.bench_select
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time

from benchmarks.media import bench_media_dir, render_scene_video

COMMAND = "python -m benchmarks.bench_select"


def _timed(fn, repeats: int = 1):
    best = float("inf")
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def select_timings() -> list[dict]:
    import torch

    from tspo import TSPOSelector
    from tspo.features.cache import FeatureCache

    video = render_scene_video(bench_media_dir() / "ten_minutes_30fps_320x180.mp4", 600, 30, 180, 320)
    with tempfile.TemporaryDirectory() as tmp:
        sel = TSPOSelector(encoder="tiny-random", cache=FeatureCache(tmp))
        first, _ = _timed(lambda: sel.select(video, "When does the red scene start?", 16))
        second, _ = _timed(lambda: sel.select(video, "What colour comes after the blue one?", 16), repeats=5)
        feats = sel.features(video).features

        def text_and_agent():
            with torch.no_grad():
                return sel.agent(feats, sel.encoder.encode_text("What colour comes after the blue one?"))

        core, _ = _timed(text_and_agent, repeats=5)
    return [
        {"case": "first call (decode + encode + score), 10 min video, T=600", "seconds": round(first, 3)},
        {"case": "second call, new question (cache hit)", "seconds": round(second, 4)},
        {"case": "text encode + agent alone", "seconds": round(core, 4)},
        {"case": "cache hit / (text + agent)", "ratio": round(second / core, 2)},
    ]


def _vm_hwm_mib() -> float:
    """Peak resident memory of this process so far (Linux VmHWM), MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not available (Linux /proc needed)")


def _extraction_child(path: str, mode: str) -> dict:
    from tspo.features.cache import encode_candidates
    from tspo.features.encoders import load_encoder
    from tspo.video import sample_candidates

    encoder = load_encoder("tiny-random") if mode == "features" else None
    base = _vm_hwm_mib()  # torch + libraries (+ encoder) before any decoding
    t0 = time.perf_counter()
    if mode == "frames":
        count = len(sample_candidates(path, fps=1.0, size=224))
    else:
        count = len(encode_candidates(path, encoder, fps=1.0))
    return {"peak_mib": _vm_hwm_mib(), "base_mib": base, "seconds": time.perf_counter() - t0, "candidates": count}


def extraction_memory() -> list[dict]:
    video = render_scene_video(bench_media_dir() / "one_hour_30fps_640x360.mp4", 3600, 30, 360, 640, scene_s=30)
    rows = []
    for mode, label in (("frames", "sample_candidates, frames kept (uint8 224x224)"),
                        ("features", "streamed encode (tiny-random), features only")):
        code = f"import json,benchmarks.bench_select as b; print(json.dumps(b._extraction_child({str(video)!r}, {mode!r})))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append({"case": f"1 h 30 fps 640x360 at 1 fps: {label}", "candidates": res["candidates"],
                     "process_peak_mib": round(res["peak_mib"], 1),
                     "extraction_mib": round(res["peak_mib"] - res["base_mib"], 1),
                     "seconds": round(res["seconds"], 1)})
    return rows


def run() -> dict:
    rows = select_timings() + extraction_memory()
    return {
        "title": "select_frames with tiny-random: cache reuse and extraction memory",
        "command": COMMAND,
        "rows": rows,
        "notes": "Targets: cache-hit call <= 3x text encode + agent; extraction peak <= 1536 MiB. "
                 "process_peak = peak RSS of a fresh process (torch's own ~500 MiB included); "
                 "extraction = its growth during extraction.",
    }


if __name__ == "__main__":
    result = run()
    for row in result["rows"]:
        print(json.dumps(row))
