"""An OpenAI-compatible chat-completions endpoint (vLLM, SGLang, ...) as the frozen oracle.

Each query becomes one request: the frames as base64 JPEG ``image_url`` parts, each preceded by
its timestamp, then the question with lettered options; ``max_tokens`` small, temperature 0, and
``logprobs``/``top_logprobs`` so option probabilities are read when the server returns them.
Requests of a group run concurrently (at most ``max_concurrency``), each with a timeout and up to
``max_retries`` retries on connection errors, timeouts, HTTP 408/429/5xx, with exponential backoff
(``backoff_s · 2^attempt``, capped at ``max_backoff_s``, times 1..2 of seeded jitter). A query
that still fails, or whose response is not valid chat-completions JSON, comes back as a failed
answer (``error`` set; malformed JSON is not retried: the server did answer). The API key is read
from the environment variable named ``api_key_env`` at request time and never appears in reprs,
logs or errors (it is redacted from any server text quoted in an error).
Stdlib only (urllib).
"""

from __future__ import annotations

import json
import math
import os
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tspo.plugins.generic import openai_messages

from .errors import OracleConfigError
from .oracle import PROMPT_VERSION, OracleAnswer, OracleQuery, check_queries, query_clip, question_text
from .parsing import parse_option

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class _Retryable(Exception):
    """A transient failure worth another try."""


def build_messages(query: OracleQuery, jpeg_quality: int = 85) -> list[dict[str, Any]]:
    """Chat messages for one query: the plug-in's :func:`tspo.plugins.generic.openai_messages`
    (timestamped JPEG frames, then the text) with the question and :func:`answer_suffix`."""
    return openai_messages(query_clip(query), question_text(query), image_format="jpeg", quality=jpeg_quality)


def option_probs_from_logprobs(choice: dict[str, Any], letters: str) -> dict[str, float] | None:
    """Option probabilities from the first answer token's ``top_logprobs`` (renormalised over the
    options found); None when the server sent no logprobs or none of the options is among them."""
    try:
        first = choice["logprobs"]["content"][0]
        tops = first.get("top_logprobs") or [first]
    except (KeyError, IndexError, TypeError):
        return None
    best: dict[str, float] = {}
    for entry in tops:
        token = str(entry.get("token", "")).strip().strip("()[]. :").upper()
        if len(token) == 1 and token in letters:
            best[token] = max(best.get(token, -math.inf), float(entry.get("logprob", -math.inf)))
    if not best:
        return None
    top = max(best.values())
    weights = {c: math.exp(best[c] - top) if c in best else 0.0 for c in letters}
    total = sum(weights.values())
    return {c: w / total for c, w in weights.items()}


class OpenAICompatibleOracle:
    """Oracle behind ``{base_url}/chat/completions`` (``base_url`` like ``http://host:8000/v1``)."""

    needs_frames = True

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", max_concurrency: int = 8,
                 timeout_s: float = 60.0, max_retries: int = 3, backoff_s: float = 0.5, max_backoff_s: float = 30.0,
                 max_tokens: int = 8,
                 use_logprobs: bool = True, jpeg_quality: int = 85, seed: int = 0, oracle_id: str | None = None):
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise OracleConfigError(f"OpenAICompatibleOracle: base_url must start with http:// or https://, got {base_url!r}")
        if not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise OracleConfigError(f"OpenAICompatibleOracle: max_concurrency must be an int >= 1, got {max_concurrency!r}")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise OracleConfigError(f"OpenAICompatibleOracle: max_retries must be an int >= 0, got {max_retries!r}")
        if not timeout_s > 0 or not backoff_s >= 0 or not isinstance(max_tokens, int) or max_tokens < 1:
            raise OracleConfigError("OpenAICompatibleOracle: need timeout_s > 0, backoff_s >= 0, max_tokens >= 1")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.max_concurrency = max_concurrency
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.max_tokens = max_tokens
        self.use_logprobs = use_logprobs
        self.jpeg_quality = jpeg_quality
        self.seed = int(seed)
        # frames go out at the caller's size (OracleCache keys on it) as JPEG of this quality
        self.oracle_id = oracle_id or f"openai({self.url},{model},jpeg={jpeg_quality},prompt={PROMPT_VERSION})"
        self.num_requests = 0  # HTTP attempts made, retries included (diagnostics)
        self._count_lock = threading.Lock()

    def __repr__(self) -> str:  # the key's env-var *name* only, never its value
        return f"OpenAICompatibleOracle(url={self.url!r}, model={self.model!r}, api_key_env={self.api_key_env!r})"

    def _redact(self, text: str) -> str:
        key = os.environ.get(self.api_key_env)
        return text.replace(key, "***") if key else text

    def _payload(self, query: OracleQuery) -> bytes:
        body: dict[str, Any] = {"model": self.model, "messages": build_messages(query, self.jpeg_quality),
                                "max_tokens": self.max_tokens, "temperature": 0.0}
        if self.use_logprobs:
            body.update(logprobs=True, top_logprobs=20)
        return json.dumps(body).encode()

    def _post(self, payload: bytes) -> bytes:
        headers = {"Content-Type": "application/json"}
        if key := os.environ.get(self.api_key_env):
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")
        with self._count_lock:
            self.num_requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode("utf-8", "replace")
            message = f"HTTP {exc.code} from {self.url}: {detail}"
            if exc.code in RETRY_STATUS:
                raise _Retryable(message) from None
            raise RuntimeError(message) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise _Retryable(f"{type(exc).__name__} talking to {self.url}: {exc}") from None

    def _answer_one(self, index: int, query: OracleQuery) -> OracleAnswer:
        payload = self._payload(query)
        # jitter seeded per (seed, query position) so reruns back off identically
        jitter = random.Random(f"{self.seed}|{query.sample_id}|{index}")
        error = "no attempt made"
        for attempt in range(self.max_retries + 1):
            try:
                body = self._post(payload)
                break
            except _Retryable as exc:
                error = str(exc)
                if attempt < self.max_retries:
                    time.sleep(min(self.backoff_s * 2**attempt, self.max_backoff_s) * (1.0 + jitter.random()))
            except RuntimeError as exc:
                return OracleAnswer.failed(self._redact(str(exc)))
        else:
            return OracleAnswer.failed(self._redact(f"gave up after {self.max_retries + 1} attempts: {error}"))
        try:
            choice = json.loads(body)["choices"][0]
            text = choice["message"]["content"]
            if not isinstance(text, str):
                raise TypeError(f"message.content is {type(text).__name__}")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            snippet = body[:200].decode("utf-8", "replace")
            return OracleAnswer.failed(self._redact(f"malformed chat-completions response ({exc!r}): {snippet}"))
        probs = option_probs_from_logprobs(choice, query.letters) if self.use_logprobs else None
        return OracleAnswer(letter=parse_option(text, len(query.options), query.options), option_probs=probs, raw=text)

    def answer(self, queries: list[OracleQuery]) -> list[OracleAnswer]:
        """Answers in query order; at most ``max_concurrency`` requests in flight."""
        queries = check_queries(queries, True, "OpenAICompatibleOracle")
        if not queries:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(queries))) as pool:
            return list(pool.map(self._answer_one, range(len(queries)), queries))
