"""`tspo features` at dataset scale (issue 22): 20 rendered 5-minute videos, tiny-random encoder, CPU.

Measured in one run (the 2-core machine is shared, so only ratios within the run mean much):
decode workers (``--num-workers 2`` vs 0), extraction vs decoding the same frames alone with the
same reader (the floor), two gloo processes vs one (each video encoded once, bit-identical), and a
run killed at 50 % then rerun (only the rest is encoded; nothing half-written is read).

Run: python -m benchmarks features
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

COMMAND = "python -m benchmarks features"
N_VIDEOS, SECONDS, SRC_FPS, B = 20, 300, 10, 64


def _videos() -> list[str]:
    from benchmarks.media import bench_media_dir, render_scene_video

    d = bench_media_dir() / "features"
    d.mkdir(parents=True, exist_ok=True)
    return [str(render_scene_video(d / f"scene{i:02d}_{SECONDS}s.mp4", SECONDS, SRC_FPS, 90, 160, seed=i))
            for i in range(N_VIDEOS)]


def _manifest(videos: list[str], path: Path) -> Path:
    path.write_text("".join(json.dumps({"id": f"v{i}", "video": v, "question": "what colour?", "options": ["a", "b"],
                                        "answer": "A", "kind": "general", "duration_s": float(SECONDS)}) + "\n"
                            for i, v in enumerate(videos)))
    return path


def _cpu_s() -> float:
    """CPU seconds of this process (all its threads) and of its finished child processes."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def _decode_only(videos, size: int, workers: int) -> tuple[float, int, float, float]:
    """The floor: the engine's own decode loader (reader, chunks, worker processes), no encoder.
    -> (seconds, frames, seconds to the first item: the workers' start-up, CPU seconds used)."""
    from tspo.features.extract import Entry, decode_loader

    entries = [Entry(str(i), v, None, v, os.path.getsize(v), [i]) for i, v in enumerate(videos)]
    t0, c0, frames, first = time.perf_counter(), _cpu_s(), 0, None
    for item in decode_loader(entries, 1.0, size, B, workers):
        first = time.perf_counter() - t0 if first is None else first
        frames += len(item["frames"]) if "frames" in item else 0
    return time.perf_counter() - t0, frames, first, _cpu_s() - c0


def _cli(manifest: Path, cache: Path, out: Path, *extra: str, wait: bool = True):
    argv = [sys.executable, "-m", "tspo", "features", str(manifest), "--feature-cache", str(cache), "--encoder",
            "tiny-random", "--max-candidates", "0", "--batch-frames", str(B), "--accelerator", "cpu", "--json",
            str(out), "--quiet", *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if not wait:
        return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"tspo features failed: {proc.stderr[-2000:]}")
    return json.loads(out.read_text()), time.perf_counter() - t0


def _same(c1: Path, c2: Path) -> bool:
    from safetensors.torch import load_file

    a = sorted(p.relative_to(c1) for p in c1.rglob("*.safetensors"))
    b = sorted(p.relative_to(c2) for p in c2.rglob("*.safetensors"))
    return a == b and all(load_file(str(c1 / p))["features"].equal(load_file(str(c2 / p))["features"]) for p in a)


def measure() -> dict:
    import torch

    from tspo.features.cache import FeatureCache
    from tspo.features.encoders import load_encoder
    from tspo.features.extract import extract_features

    videos = _videos()
    enc = load_encoder("tiny-random")
    # One intra-op thread for both in-process runs, so the workers row compares decode workers only
    # (the engine itself lowers threads to the cores the workers leave free).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    m: dict = {"videos": len(videos), "seconds_each": SECONDS, "encoder_size": enc.image_size,
               "load_average_1min_start": round(os.getloadavg()[0], 1)}
    with tempfile.TemporaryDirectory(prefix="tspo-bench-features-") as tmp:
        tmp = Path(tmp)
        for w in (0, 2):
            m[f"decode_s_w{w}"], m["frames"], m[f"first_item_s_w{w}"], m[f"decode_cpu_s_w{w}"] = _decode_only(
                videos, enc.image_size, w)
            c0 = _cpu_s()
            s = extract_features(videos, enc, FeatureCache(tmp / f"w{w}"), 1.0, None, num_workers=w,
                                 batch_frames=B, progress=False)
            m[f"extract_cpu_s_w{w}"] = _cpu_s() - c0
            m[f"extract_s_w{w}"], m[f"videos_per_s_w{w}"] = s.seconds, s.done / s.seconds
            m[f"encoder_calls_w{w}"] = s.encoder_calls
            r = s.ranks[0]   # where the rank's time went
            m[f"encode_s_w{w}"], m[f"wait_s_w{w}"], m[f"store_s_w{w}"] = r.encode_s, r.decode_wait_s, r.store_s
        # the same 2-worker run with spawned workers (what the engine did before it forked them)
        with mock.patch("tspo.features.extract.worker_start_method", lambda: "spawn"):
            m["decode_s_w2_spawn"], _, m["first_item_s_w2_spawn"], m["decode_cpu_s_w2_spawn"] = _decode_only(
                videos, enc.image_size, 2)
            s = extract_features(videos, enc, FeatureCache(tmp / "spawn"), 1.0, None, num_workers=2,
                                 batch_frames=B, progress=False)
            m["extract_s_w2_spawn"], m["videos_per_s_w2_spawn"] = s.seconds, s.done / s.seconds
        torch.set_num_threads(threads)
        manifest = _manifest(videos, tmp / "m.jsonl")
        one, m["cli_1proc_s"] = _cli(manifest, tmp / "one", tmp / "one.json", "--num-workers", "0")
        two, m["cli_2proc_s"] = _cli(manifest, tmp / "two", tmp / "two.json", "--num-workers", "0", "--devices", "2")
        keys = [v["key"] for r in two["ranks"] for v in r["videos"]]
        m["two_proc_each_once"] = len(keys) == len(set(keys)) == len(videos) and all(
            v["frames"] == SECONDS for r in two["ranks"] for v in r["videos"])
        m["two_proc_per_rank"] = [r["done"] for r in two["ranks"]]
        m["two_proc_bit_identical"] = _same(tmp / "one", tmp / "two")
        # kill at 50 %: SIGKILL once half of the entries are on disk, then rerun
        proc = _cli(manifest, tmp / "kill", tmp / "kill.json", "--num-workers", "0", wait=False)
        while len(list((tmp / "kill").rglob("*.safetensors"))) < len(videos) // 2 and proc.poll() is None:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        m["killed_with_entries"] = len(list((tmp / "kill").rglob("*.safetensors")))
        rerun, m["rerun_s"] = _cli(manifest, tmp / "kill", tmp / "kill.json", "--num-workers", "0")
        m["rerun_cached"], m["rerun_done"] = rerun["cached"], rerun["done"]
        m["rerun_bit_identical"] = _same(tmp / "one", tmp / "kill")
    m["load_average_1min"] = round(os.getloadavg()[0], 1)
    return m


def run() -> dict:
    m = measure()
    speedup = m["videos_per_s_w2"] / m["videos_per_s_w0"]
    floor2, floor0 = m["extract_s_w2"] / m["decode_s_w2"], m["extract_s_w0"] / m["decode_s_w0"]
    # The speed-up splits exactly into (CPU the work needs, in-process / 2 workers) x (cores each run
    # kept busy, 2 workers / in-process): the workers can only win by getting more of the machine.
    busy0, busy2 = m["extract_cpu_s_w0"] / m["extract_s_w0"], m["extract_cpu_s_w2"] / m["extract_s_w2"]
    rows = [
        {"measure": "2 gloo processes: every video encoded exactly once (frames per video = 300)", "target": "yes",
         "measured": f"{m['two_proc_each_once']} (per rank {m['two_proc_per_rank']})", "met": m["two_proc_each_once"]},
        {"measure": "2 processes vs 1: features bit-identical", "target": "yes",
         "measured": m["two_proc_bit_identical"], "met": m["two_proc_bit_identical"]},
        {"measure": "videos/s, --num-workers 2 / --num-workers 0", "target": ">= 1.5",
         "measured": f"{speedup:.2f} = CPU-s {m['extract_cpu_s_w0']:.1f} / {m['extract_cpu_s_w2']:.1f} x cores "
                     f"busy {busy2:.2f} / {busy0:.2f}", "met": speedup >= 1.5},
        {"measure": "extraction / decode alone, 2 workers (s)", "target": "<= 1.3",
         "measured": f"{floor2:.2f} ({m['extract_s_w2']:.1f} / {m['decode_s_w2']:.1f})", "met": floor2 <= 1.3},
        {"measure": "extraction / decode alone, in-process (s)", "target": "-",
         "measured": f"{floor0:.2f} ({m['extract_s_w0']:.1f} / {m['decode_s_w0']:.1f})", "met": "-"},
        {"measure": "before: 2 workers started by spawn, videos/s / --num-workers 0; extraction / decode alone (s)",
         "target": "-", "measured": f"{m['videos_per_s_w2_spawn'] / m['videos_per_s_w0']:.2f}; "
         f"{m['extract_s_w2_spawn'] / m['decode_s_w2_spawn']:.2f} ({m['extract_s_w2_spawn']:.1f} / "
         f"{m['decode_s_w2_spawn']:.1f})", "met": "-"},
        {"measure": f"kill at 50 % ({m['killed_with_entries']} entries on disk), rerun: cached / encoded",
         "target": f"{m['killed_with_entries']} / {N_VIDEOS - m['killed_with_entries']}",
         "measured": f"{m['rerun_cached']} / {m['rerun_done']}, bit-identical {m['rerun_bit_identical']}",
         "met": m["rerun_cached"] == m["killed_with_entries"] and m["rerun_done"] == N_VIDEOS - m["rerun_cached"]
         and m["rerun_bit_identical"]},
    ]
    notes = (f"{N_VIDEOS} rendered {SECONDS}-s videos ({SRC_FPS} fps, 160x90, H.264), 1 candidate/s, no cap: "
             f"{m['frames']} candidate frames, tiny-random encoder ({m['encoder_size']} px), batch {B} frames per "
             f"encoder call, 1 torch thread in the in-process runs (the CLI runs: torch's default). Wall times (s): "
             f"in-process extraction {m['extract_s_w0']:.1f} ({m['encoder_calls_w0']} encoder calls), 2 workers "
             f"{m['extract_s_w2']:.1f}; decode alone {m['decode_s_w0']:.1f} / {m['decode_s_w2']:.1f}. Where the "
             f"rank's time went (s), in-process / 2 workers: encoder calls {m['encode_s_w0']:.1f} / "
             f"{m['encode_s_w2']:.1f}, decoding or waiting for decoded frames {m['wait_s_w0']:.1f} / "
             f"{m['wait_s_w2']:.1f}, cache writes {m['store_s_w0']:.2f} / {m['store_s_w2']:.2f}; first decoded "
             f"chunk after {m['first_item_s_w2']:.2f} s with 2 forked workers, {m['first_item_s_w2_spawn']:.2f} s "
             f"with 2 spawned ones (each imports torch). CPU seconds (all threads and worker processes): decode alone "
             f"{m['decode_cpu_s_w0']:.1f} in-process / {m['decode_cpu_s_w2']:.1f} 2 workers; extraction "
             f"{m['extract_cpu_s_w0']:.1f} / {m['extract_cpu_s_w2']:.1f}: the workers add no work, so their speed-up "
             f"is the ratio of the cores the two runs kept busy ({busy2:.2f} / {busy0:.2f}). It reaches 2 only on "
             f"2 free cores and with an in-process run that keeps one core busy; here other jobs' threads hold "
             f"most of the 2 cores, and in-process decoding already runs decord's decoding thread beside "
             f"Python's. `tspo features` CLI 1 process "
             f"{m['cli_1proc_s']:.1f}, 2 gloo processes {m['cli_2proc_s']:.1f} (both --num-workers 0; start-up "
             f"included: on 2 shared cores two ranks cannot be faster, the row checks work division, not speed); "
             f"rerun after the kill {m['rerun_s']:.1f}. The machine's 2 cores are shared with other jobs (1-min "
             f"load average {m['load_average_1min_start']} at the start, {m['load_average_1min']} at the end): "
             f"compare ratios within this run only.")
    return {"title": "Candidate features at dataset scale (`tspo features`): workers, ranks, resume",
            "command": COMMAND, "rows": rows, "notes": notes}


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
