"""The default encoder without network: the advice within seconds, no minute of hub retries (issue 21)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from conftest import write_video


def _closed_port() -> int:
    with socket.socket() as s:  # bound then released: nothing listens there, a connect is refused at once
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path, offline: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"} and "proxy" not in k.lower()}
    env.update(HF_HOME=str(tmp_path / "hf"), TSPO_CACHE=str(tmp_path / "tspo"))  # no cached weights
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    else:  # "no network" without touching it: a hub endpoint on a local port nobody listens on
        env["HF_ENDPOINT"] = f"http://127.0.0.1:{_closed_port()}"
    return env


LOAD = ("import time, sys\nfrom tspo.features.encoders import load_encoder, EncoderWeightsError\nt = time.perf_counter()\n"
        "try:\n    load_encoder('ViT-L-14:openai')\nexcept EncoderWeightsError as err:\n"
        "    print(f'{time.perf_counter() - t:.2f}'); print(err, file=sys.stderr)\n")


def test_no_network_default_encoder_advice_within_five_seconds(tmp_path):
    for offline in (False, True):
        proc = subprocess.run([sys.executable, "-c", LOAD], env=_env(tmp_path, offline), capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert proc.stdout.strip(), proc.stderr[-2000:]
        assert float(proc.stdout) <= 5.0, (offline, proc.stdout)
        assert "Retrying" not in proc.stderr and "ERROR:root" not in proc.stderr
        assert "The network is off (" + ("HF_HUB_OFFLINE=1" if offline else "cannot reach http://127.0.0.1") in proc.stderr
        assert "--encoder tiny-random" in proc.stderr and "ViT-L-14:/path/to/weights.bin" in proc.stderr


def test_tspo_select_offline_prints_the_advice_and_nothing_else(tmp_path):
    video = write_video(tmp_path / "clip.mp4", seconds=4)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tspo", "select", str(video), "what colour?"],
                          env=_env(tmp_path, offline=False), capture_output=True, text=True, timeout=120)  # fmt: skip
    took = time.perf_counter() - start
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("tspo select: error: could not load the weights of encoder 'ViT-L-14:openai'")
    assert len(lines) <= 6 and "Retrying" not in proc.stderr, proc.stderr
    assert took < 20, took  # the hub's own retries alone took > 20 s here (1 + 2 + 4 + 8 + 8 s back-off)
