"""OpenAICompatibleOracle against a real chat-completions server on 127.0.0.1 (a thread in the test)."""

import base64
import io
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from tspo.rewards import OpenAICompatibleOracle, OracleCache, OracleConfigError, OracleQuery

KEY = "sk-test-SECRET-1234"


class ChatServer:
    """Answers with the letter named in the question ("... pick X ..."), with logprobs.

    ``mode``: "ok" | "flaky" (every other request -> HTTP 500) | "malformed" (invalid JSON) |
    "slow" (sleeps past the client timeout) | "400" (a non-retryable client error) |
    "unreadable" (valid JSON, but the text names no option).
    """

    def __init__(self, mode="ok"):
        self.mode = mode
        self.count = 0
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.auth: list[str | None] = []
        self.in_flight = 0
        self.max_in_flight = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.count += 1
                    n = server.count
                    server.requests.append(body)
                    server.auth.append(self.headers.get("Authorization"))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(0.02)
                    if server.mode == "flaky" and n % 2 == 1:
                        return self._send(500, b'{"error": "overloaded"}')
                    if server.mode == "malformed":
                        return self._send(200, b'{"choices": [{"message": ')
                    if server.mode == "400":
                        return self._send(400, b'{"error": "bad model name"}')
                    if server.mode == "slow":
                        time.sleep(0.3)
                    if server.mode == "unreadable":
                        reply = {"choices": [{"message": {"role": "assistant", "content": "Hmm, hard to say."}}]}
                        return self._send(200, json.dumps(reply).encode())
                    text = body["messages"][0]["content"][-1]["text"]
                    letter = re.search(r"pick ([A-Z])", text).group(1)
                    reply = {"choices": [{"message": {"role": "assistant", "content": f"The answer is ({letter})."},
                                          "logprobs": {"content": [{"token": letter, "logprob": -0.1, "top_logprobs": [
                                              {"token": letter, "logprob": -0.1}, {"token": "A", "logprob": -2.5},
                                              {"token": " Z", "logprob": -3.0}]}]}}]}
                    return self._send(200, json.dumps(reply).encode())
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _send(self, code, payload):
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def queries(n=6, k=3):
    rng = np.random.default_rng(0)
    return [
        OracleQuery(f"s{i}", f"Which one? pick {'ABCD'[i % 4]}", ("w", "x", "y", "z"), np.arange(k, dtype=float) * 2.5,
                    frames=rng.integers(0, 255, (k, 16, 16, 3), dtype=np.uint8))
        for i in range(n)
    ]


def oracle(url, **kw):
    kw.setdefault("backoff_s", 0.01)
    kw.setdefault("timeout_s", 5.0)
    return OpenAICompatibleOracle(url, "tiny-model", api_key_env="TSPO_TEST_KEY", **kw)


def test_answers_letters_probs_and_sends_images(monkeypatch):
    monkeypatch.setenv("TSPO_TEST_KEY", KEY)
    with ChatServer() as server:
        out = oracle(server.url, max_concurrency=3).answer(queries())
    assert [a.letter for a in out] == list("ABCDAB")
    assert all(a.ok for a in out)
    b = out[1].option_probs
    assert set(b) == set("ABCD") and b["B"] > 0.9 and b["C"] == 0.0 and sum(b.values()) == pytest.approx(1.0)
    assert server.auth == [f"Bearer {KEY}"] * 6
    assert server.max_in_flight <= 3
    req = server.requests[0]
    assert req["max_tokens"] == 8 and req["logprobs"] is True and req["model"] == "tiny-model"
    parts = req["messages"][0]["content"]
    images = [p for p in parts if p["type"] == "image_url"]
    assert len(images) == 3 and parts[0]["text"] == "Frame at 0.0 s:" and parts[2]["text"] == "Frame at 2.5 s:"  # the plug-in's layout
    jpeg = base64.b64decode(images[0]["image_url"]["url"].split(",", 1)[1])
    assert Image.open(io.BytesIO(jpeg)).size == (16, 16)
    assert "A. w\nB. x" in parts[-1]["text"]


def test_server_failing_every_other_request_loses_no_answer():
    # one request at a time: each query's first try fails, its retry succeeds
    with ChatServer("flaky") as server:
        o = oracle(server.url, max_concurrency=1, max_retries=1)
        out = o.answer(queries(6))
    assert [a.letter for a in out] == list("ABCDAB") and all(a.ok for a in out)
    assert server.count == 12 and o.num_requests == 12
    # concurrent: which request fails depends on the interleaving; enough retries ride it out
    with ChatServer("flaky") as server:
        o = oracle(server.url, max_concurrency=4, max_retries=12, max_backoff_s=0.02)
        out = o.answer(queries(8))
    assert [a.letter for a in out] == list("ABCDABCD") and all(a.ok for a in out)
    assert server.count >= 16 and o.num_requests == server.count


def test_malformed_json_is_a_counted_failed_answer():
    with ChatServer("malformed") as server:
        out = oracle(server.url).answer(queries(3))
    assert [a.ok for a in out] == [False] * 3
    assert all("malformed chat-completions response" in a.error for a in out)
    assert server.count == 3  # not retried: the server answered, wrongly


def test_answer_naming_no_option_is_unparsed_not_failed():
    """The server answered: no letter readable is a wrong answer (scored), not a failed query (dropped)."""
    with ChatServer("unreadable") as server:
        cache = OracleCache(oracle(server.url))
        out = cache.answer(queries(2))
        again = cache.answer(queries(2))
    assert all(a.unparsed and not a.is_failed and a.ok and a.raw == "Hmm, hard to say." for a in out)
    assert server.count == 2 and [a.raw for a in again] == [a.raw for a in out]   # cached, not re-asked


def test_oracle_id_names_the_jpeg_quality():
    assert oracle("http://127.0.0.1:9/v1").oracle_id == "openai(http://127.0.0.1:9/v1/chat/completions,tiny-model,jpeg=85,prompt=2)"
    assert oracle("http://127.0.0.1:9/v1", jpeg_quality=50).oracle_id.endswith(",jpeg=50,prompt=2)")


def test_timeouts_retry_then_fail_with_error():
    with ChatServer("slow") as server:
        o = oracle(server.url, timeout_s=0.15, max_retries=1)
        out = o.answer(queries(2))
    assert all(not a.ok and "gave up after 2 attempts" in a.error for a in out)
    assert o.num_requests == 4


def test_client_error_is_not_retried_and_key_never_leaks(monkeypatch):
    monkeypatch.setenv("TSPO_TEST_KEY", KEY)
    with ChatServer("400") as server:
        o = oracle(server.url, max_retries=3)
        out = o.answer(queries(2))
    assert all("HTTP 400" in a.error for a in out) and server.count == 2
    assert KEY not in repr(o) and all(KEY not in a.error for a in out)
    assert "TSPO_TEST_KEY" in repr(o)


def test_no_key_sends_no_auth_header(monkeypatch):
    monkeypatch.delenv("TSPO_TEST_KEY", raising=False)
    with ChatServer() as server:
        assert oracle(server.url).answer(queries(1))[0].letter == "A"
    assert server.auth == [None]


def test_unreachable_server_fails_cleanly_and_cache_does_not_store_it():
    with ChatServer() as server:
        url = server.url
    cache = OracleCache(oracle(url, max_retries=1, timeout_s=0.5))
    out = cache.answer(queries(2))
    assert all(not a.ok and "gave up" in a.error for a in out) and len(cache) == 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"base_url": "localhost:8000"}, "http://"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_retries": -1}, "max_retries"),
        ({"timeout_s": 0}, "timeout_s"),
    ],
)
def test_bad_settings(kwargs, match):
    args = {"base_url": "http://127.0.0.1:9/v1", "model": "m"} | kwargs
    with pytest.raises(OracleConfigError, match=match):
        OpenAICompatibleOracle(**args)


def test_needs_frames():
    with pytest.raises(ValueError, match="needs pixels"):
        oracle("http://127.0.0.1:9/v1").answer([OracleQuery("s", "q", ("a", "b"), [0.0])])
