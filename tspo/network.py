"""Can the Hugging Face Hub be reached: offline mode, one quick probe, cache-only loading.

Below every loader (CLIP encoders, selectors, oracles) so that a machine without network says so in
seconds and cached weights still load.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlparse
from urllib.request import getproxies


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set to a true value (read now, not at import)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


PROBE_TIMEOUT_S = 3.0  # a reachable hub answers a TCP connect in well under a second


def hub_unreachable(timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when the Hugging Face Hub (or the https proxy in the environment) takes a TCP connection
    within ``timeout_s`` seconds; else why not, in words (``HF_HUB_OFFLINE=1`` without probing).

    One short probe, so that a machine without network says so in seconds instead of going through
    ``huggingface_hub``'s retries (about a minute of warnings) before the same conclusion."""
    if is_offline():
        return "HF_HUB_OFFLINE=1"
    try:
        from huggingface_hub import constants

        endpoint = constants.ENDPOINT
    except ImportError:
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    url = urlparse(getproxies().get("https") or endpoint)
    if not url.hostname:
        return None  # nothing we can probe: let the download decide
    port = url.port or (443 if url.scheme == "https" else 80)
    outcome: dict[str, object] = {}

    def probe() -> None:  # in a thread: name resolution has no timeout of its own
        try:
            socket.create_connection((url.hostname, port), timeout=timeout_s).close()
            outcome["ok"] = True
        except OSError as err:
            outcome["error"] = err

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if outcome.get("ok"):
        return None
    if "error" in outcome:
        return f"cannot reach {url.scheme}://{url.hostname}:{port} ({outcome['error']})"
    return f"{url.scheme}://{url.hostname}:{port} did not answer within {timeout_s:g} s"


@contextlib.contextmanager
def hub_files_only(on: bool) -> Iterator[None]:
    """Inside, with ``on``: ``huggingface_hub`` reads its cache only (as under ``HF_HUB_OFFLINE=1``),
    so cached weights load and a missing file fails at once instead of after retries."""
    try:
        from huggingface_hub import constants
    except ImportError:
        on = False
    if not on:
        yield
        return
    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True  # read at call time (constants.is_offline_mode()), not only at import
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before
