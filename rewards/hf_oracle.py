"""A Hugging Face transformers video LLM as the frozen oracle (Qwen2-VL, Qwen2.5-VL, LLaVA-OneVision).

``mode="score"`` (default): the G queries of a group go through **one** batched forward pass
(left padding, so every row's last position is where the answer starts); the next-token logits of
the option letters give ``option_probs`` (softmax over the options) and the letter is their
argmax. No generation. ``mode="generate"``: greedy generation of up to ``max_new_tokens`` tokens
(batched, left padded), then :func:`parse_option` — for models that must reason first.

transformers is the optional ``hf`` extra; it is imported only when an oracle is built.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from .errors import OracleConfigError
from .hf_adapters import VideoLLMAdapter, adapter_for
from .oracle import PROMPT_VERSION, OracleAnswer, OracleQuery, check_queries
from .parsing import LETTERS, parse_option

MODES = ("score", "generate")


def frame_size_spec(processor: Any) -> str:
    """The video processor's resize target as a short string (e.g. ``height=384,width=384``), or
    ``input`` when it has none: part of ``oracle_id`` because it changes what the model sees."""
    import dataclasses

    size = getattr(getattr(processor, "video_processor", None), "size", None)
    if size is None:
        return "input"
    items = dataclasses.asdict(size) if dataclasses.is_dataclass(size) else dict(size)
    return ",".join(f"{k}={v}" for k, v in sorted(items.items()) if v is not None) or "input"


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:  # the optional extra is missing
        raise OracleConfigError(
            "HFVideoLLMOracle needs transformers: pip install 'tspo[hf]'"
        ) from exc
    return transformers


class HFVideoLLMOracle:
    """Oracle over a loaded transformers video LLM and its processor.

    ``model``: e.g. ``Qwen2VLForConditionalGeneration`` (eval mode is set); ``processor``: its
    processor (tokenizer + video processor). ``batch_size``: queries per forward (None = all).
    ``generate_kwargs``: extra ``model.generate`` arguments in generate mode (greedy by default).
    """

    needs_frames = True

    def __init__(self, model: Any, processor: Any, mode: str = "score", max_new_tokens: int = 16,
                 batch_size: int | None = None, with_timestamps: bool = True,
                 generate_kwargs: dict[str, Any] | None = None, oracle_id: str | None = None):
        model_type = getattr(getattr(model, "config", None), "model_type", None)
        self.adapter: VideoLLMAdapter = adapter_for(model_type)
        if mode not in MODES:
            raise OracleConfigError(f"HFVideoLLMOracle: mode must be one of {MODES}, got {mode!r}")
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise OracleConfigError(f"HFVideoLLMOracle: max_new_tokens must be an int >= 1, got {max_new_tokens!r}")
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise OracleConfigError(f"HFVideoLLMOracle: batch_size must be None or an int >= 1, got {batch_size!r}")
        tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is None:
            raise OracleConfigError("HFVideoLLMOracle: processor has no tokenizer; pass the model's AutoProcessor")
        self.model = model.eval()
        self.processor = processor
        self.tokenizer = tokenizer
        self.mode = mode
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.with_timestamps = with_timestamps
        self.generate_kwargs = {"do_sample": False, **(generate_kwargs or {})}
        name = getattr(model.config, "_name_or_path", "") or model_type
        # The processor's resize target is part of what the model sees; the caller's frame size
        # is keyed by OracleCache from the query frames themselves.
        self.oracle_id = oracle_id or (
            f"hf({name},{mode}{'' if mode == 'score' else f',{max_new_tokens}'},prompt={PROMPT_VERSION},"
            f"px[{frame_size_spec(processor)}])"
        )
        if mode == "score":
            self._letter_index, self._letter_mask = self._letter_token_index()

    def __repr__(self) -> str:
        return f"HFVideoLLMOracle({self.oracle_id})"

    @classmethod
    def from_pretrained(cls, model_id: str, device: str | torch.device = "cpu", dtype: Any = None,
                        local_files_only: bool | None = None, **kwargs: Any) -> HFVideoLLMOracle:
        """Load model + processor by hub id or local directory; ``kwargs`` go to the constructor.

        Raises :class:`OracleConfigError` for a model type with no adapter or weights that are not
        available (e.g. offline with an empty cache), saying how to get them.
        """
        tf = _import_transformers()
        if local_files_only is None:
            local_files_only = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        try:
            config = tf.AutoConfig.from_pretrained(model_id, local_files_only=local_files_only)
            adapter_for(config.model_type)
            processor = tf.AutoProcessor.from_pretrained(model_id, local_files_only=local_files_only)
            model = tf.AutoModelForImageTextToText.from_pretrained(
                model_id, dtype=dtype, local_files_only=local_files_only
            )
        except OracleConfigError:
            raise
        except (OSError, ValueError) as exc:
            raise OracleConfigError(
                f"HFVideoLLMOracle: could not load {model_id!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
                f"Download it first (`huggingface-cli download {model_id}`, with network and HF_HUB_OFFLINE unset) "
                "or pass a local directory holding config.json, the processor files and the weights"
            ) from exc
        return cls(model.to(device), processor, **kwargs)

    def _letter_token_index(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids of each letter A..Z as ``"A"`` / ``" A"`` (single tokens, deduplicated), padded:
        -> (index int64[26, V], valid bool[26, V]); V = most variants of any letter (1 or 2)."""
        ids: list[list[int]] = []
        for letter in LETTERS:
            variants = {tuple(self.tokenizer.encode(v, add_special_tokens=False)) for v in (letter, " " + letter)}
            ids.append(sorted({v[0] for v in variants if len(v) == 1}))
        missing = [c for c, s in zip(LETTERS, ids) if not s]
        if missing:
            raise OracleConfigError(
                f"HFVideoLLMOracle: the tokenizer splits option letters {missing} into several tokens, so "
                "letter scoring cannot work; use mode='generate'"
            )
        width = max(len(s) for s in ids)
        index = torch.tensor([s + [s[0]] * (width - len(s)) for s in ids], dtype=torch.long)
        valid = torch.tensor([[j < len(s) for j in range(width)] for s in ids])
        return index, valid

    def _inputs(self, queries: list[OracleQuery]) -> dict[str, Any]:
        side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "left"  # the last position of every row is the answer's first token
        try:
            batch = self.adapter.inputs(self.processor, queries, self.with_timestamps)
        finally:
            self.tokenizer.padding_side = side
        device = next(self.model.parameters()).device
        dtype = next(self.model.parameters()).dtype
        return {k: (v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device))
                if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    def _score(self, queries: list[OracleQuery]) -> list[OracleAnswer]:
        inputs = self._inputs(queries)
        logits = self.model(**inputs, logits_to_keep=1).logits[:, -1].float()  # [B, V]
        n_max = max(len(q.options) for q in queries)
        index = self._letter_index[:n_max].to(logits.device)                     # [n_max, V]
        valid = self._letter_mask[:n_max].to(logits.device)
        # one gather of every letter's token variants ("A", " A"), then logsumexp over them -> [B, n_max]
        letter_logits = logits[:, index].masked_fill(~valid, -torch.inf).logsumexp(dim=-1)
        n_opts = torch.tensor([len(q.options) for q in queries], device=logits.device)
        letter_logits = letter_logits.masked_fill(torch.arange(n_max, device=logits.device) >= n_opts[:, None], -torch.inf)
        probs = torch.softmax(letter_logits, dim=-1).cpu()
        best = probs.argmax(dim=-1)
        return [
            OracleAnswer(letter=q.letters[int(best[i])],
                         option_probs={c: float(probs[i, j]) for j, c in enumerate(q.letters)})
            for i, q in enumerate(queries)
        ]

    def _generate(self, queries: list[OracleQuery]) -> list[OracleAnswer]:
        inputs = self._inputs(queries)
        out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, **self.generate_kwargs)
        texts = self.tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        return [OracleAnswer(letter=parse_option(t, len(q.options), q.options), raw=t) for q, t in zip(queries, texts)]

    @torch.no_grad()
    def answer(self, queries: list[OracleQuery]) -> list[OracleAnswer]:
        """Answers in order. A chunk whose forward fails (e.g. out of memory) comes back as failed answers."""
        queries = check_queries(queries, True, "HFVideoLLMOracle")
        step = self.batch_size or max(len(queries), 1)
        run = self._score if self.mode == "score" else self._generate
        answers: list[OracleAnswer] = []
        for start in range(0, len(queries), step):  # chunks bound memory; each chunk is one batched call
            chunk = queries[start:start + step]
            try:
                answers.extend(run(chunk))
            except RuntimeError as exc:  # includes torch.cuda.OutOfMemoryError
                answers.extend(OracleAnswer.failed(f"{type(exc).__name__}: {str(exc)[:300]}") for _ in chunk)
        return answers
