"""The IOProcessor vLLM loads in the front end (offline `LLM` or the API server).

One request = one document: parse_data() validates it, pre_process() tokenizes it once with the
served model's tokenizer and returns one prompt per window (token ids, so vLLM does not
tokenize again), and vLLM schedules every window of every concurrent request as ordinary
pooling requests, batched together. post_process() gets the windows' vectors back in order and
aggregates them.

State: the only thing kept between pre_process and post_process is each request's plan
(windows and options), in a dict keyed by vLLM's request id and removed by post_process. The
processor is one object shared by all requests of a server, so nothing else about a request
lives on it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vllm.exceptions import VLLMValidationError
from vllm.outputs import PoolingRequestOutput
from vllm.plugins.io_processors.interface import IOProcessor
from vllm.pooling_params import PoolingParams

from . import PLUGIN, STATE
from . import windows as W
from .windows import BadRequest, Request, Window

if TYPE_CHECKING:
    from vllm.inputs import TokensPrompt

DEFAULT_MAX_CHARS = 1_000_000
# The largest REF_IO_MAX_CHARS: 10^8 characters are some 25 million tokens, tens of thousands of
# windows and gigabytes of tokenizer offsets for one request; a server meant for more should
# split documents before sending them.
MAX_MAX_CHARS = 100_000_000
MAX_PENDING = 4096  # plans of requests whose post_process never came (an aborted request)



class InvalidRequest(VLLMValidationError, ValueError):
    """A refused request as vLLM's own validation error (a 400 naming the field as `param`);
    also a ValueError, which older servers and offline callers map the same way."""


logger = logging.getLogger("vllm_ref.io")  # the repository's one log tree (vllm_ref_common.gate)


def max_chars_setting(env: Any = None) -> int:
    """REF_IO_MAX_CHARS: the largest document accepted, in characters; a bad value fails start-up."""
    from . import MAX_CHARS_ENV

    raw = (os.environ if env is None else env).get(MAX_CHARS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_CHARS
    try:
        value = int(raw) if raw.isascii() else 0
    except ValueError:  # also an integer of more than 4300 digits
        value = 0
    if not 1 <= value <= MAX_MAX_CHARS:
        raise ValueError(f"{PLUGIN}: {MAX_CHARS_ENV}={W.shown(raw)} is not accepted; accepted: an integer "
                         f"from 1 to {MAX_MAX_CHARS} (characters), unset for {DEFAULT_MAX_CHARS}")
    return value


def special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after a text (BOS, [CLS] ... [SEP]):
    each window gets them, as if it had been tokenized on its own."""
    probe = "a b c"
    bare = list(tokenizer(probe, add_special_tokens=False)["input_ids"])
    full = list(tokenizer(probe, add_special_tokens=True)["input_ids"])
    for k in range(len(full) - len(bare) + 1):
        if full[k:k + len(bare)] == bare:
            return full[:k], full[k + len(bare):]
    return [], []  # a tokenizer that rewrites the text itself: send windows bare


class RefIOProcessor(IOProcessor):
    """Long-document embeddings: windows in, one L2-normalised vector (and the windows') out."""

    def __init__(self, vllm_config: Any, renderer: Any = None):
        super().__init__(vllm_config, renderer)
        self.max_model_len = int(vllm_config.model_config.max_model_len)
        self.max_chars = max_chars_setting()
        if renderer is not None:
            self.tokenizer = renderer.get_tokenizer()
        else:  # not reached on the releases we test; kept so a renderer-less vLLM still works
            from vllm.tokenizers import get_tokenizer

            self.tokenizer = get_tokenizer(vllm_config.model_config.tokenizer)
        self.prefix, self.suffix = special_tokens(self.tokenizer)
        self.specials = len(self.prefix) + len(self.suffix)
        if self.specials >= self.max_model_len:
            raise ValueError(f"{PLUGIN}: the served max_model_len ({self.max_model_len}) leaves no room "
                             f"beside the {self.specials} special tokens of each window")
        self._plans: dict[str | None, tuple[Request, list[Window], int]] = {}
        self._lock = threading.Lock()  # pre/post processing may run on vLLM's thread pool
        STATE["processors"] += 1

    # vLLM's hooks ---------------------------------------------------------------------------

    def parse_data(self, data: object) -> Request:
        try:
            return W.parse_request(data, self.max_model_len, self.specials, self.max_chars)
        except BadRequest as exc:
            raise InvalidRequest(str(exc), parameter=exc.field) from None

    def merge_pooling_params(self, params: PoolingParams | None = None) -> PoolingParams:
        # Each window is an ordinary "embed" request (the model's own pooling and normalisation);
        # the default would ask the model for a "plugin" task it does not have.
        params = params.clone() if params is not None else PoolingParams()
        params.task = "embed"
        return params

    def pre_process(self, prompt: Request, request_id: str | None = None, **kwargs: Any) -> list[TokensPrompt]:
        enc = self.tokenizer(prompt.text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = list(enc["input_ids"]), enc.get("offset_mapping")
        if offsets is None:
            raise ValueError(f"{PLUGIN}: the served tokenizer gives no character offsets "
                             "(a 'fast' tokenizer is needed for the windows' spans)")
        try:
            plan = W.plan(prompt, ids, offsets, self.max_model_len,
                          lambda c: [*self.prefix, *c, *self.suffix], self.specials)
        except BadRequest as exc:
            raise InvalidRequest(str(exc), parameter=exc.field) from None
        with self._lock:
            if request_id in self._plans and request_id is not None:
                raise InvalidRequest(f"{PLUGIN}: request id {request_id!r} is already in flight; accepted: "
                                     "a request id no running request uses", parameter="request_id")
            if len(self._plans) >= MAX_PENDING:  # only requests that never finished: drop the oldest
                dropped = next(iter(self._plans))
                self._plans.pop(dropped)
                logger.warning("%s: %d requests in flight; forgot the windows of the oldest, %r (it can no "
                               "longer be answered)", PLUGIN, MAX_PENDING, dropped)
            self._plans[request_id] = (prompt, plan, len(ids))
        return [{"prompt_token_ids": w.token_ids} for w in plan]

    def post_process(self, model_output: Sequence[PoolingRequestOutput], request_id: str | None = None,
                     **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            found = self._plans.pop(request_id, None)
        if found is None:
            raise RuntimeError(f"{PLUGIN}: no windows recorded for request {request_id!r}")
        req, plan, n_tokens = found
        if len(model_output) != len(plan):
            raise RuntimeError(f"{PLUGIN}: {len(plan)} windows sent, {len(model_output)} vectors back")
        vectors = [out.outputs.data.float().reshape(-1) for out in model_output]
        doc = W.aggregate(req.aggregate, vectors, [w.tokens for w in plan])
        result: dict[str, Any] = {
            "embedding": None if doc is None else doc.tolist(),
            "tokens": n_tokens,
        }
        if req.return_windows or req.aggregate == "none":
            result["windows"] = [{"start": w.start, "end": w.end, "tokens": w.tokens, "embedding": v.tolist()}
                                 for w, v in zip(plan, vectors, strict=True)]
        with self._lock:
            STATE["requests"] += 1
            STATE["windows"] += len(plan)
        return result
