"""The processor: {"texts": [...]} in, {"similarity": N x N cosine matrix} out.

vLLM builds one instance per server and calls it for every request, concurrently: it keeps no
per-request state (everything a request needs travels through the arguments).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from vllm.plugins.io_processors.interface import IOProcessor
from vllm.pooling_params import PoolingParams

from . import PLUGIN, _state

MAX_TEXTS = 64


class SimilarityProcessor(IOProcessor[list[str], dict[str, Any]]):
    def __init__(self, vllm_config: Any, renderer: Any) -> None:
        super().__init__(vllm_config, renderer)
        _state["built"] += 1

    def parse_data(self, data: object) -> list[str]:
        # A ValueError here becomes a 400 for this request only; the server keeps serving.
        texts = data.get("texts") if isinstance(data, dict) else None
        if (not isinstance(texts, list) or not 1 <= len(texts) <= MAX_TEXTS
                or not all(isinstance(t, str) and t for t in texts)):
            raise ValueError(f"{PLUGIN}: data.texts must be a list of 1 to {MAX_TEXTS} non-empty strings")
        return texts

    def merge_pooling_params(self, params: PoolingParams | None = None) -> PoolingParams:
        # One pooled, normalised vector per text: the model's own "embed" task.
        return PoolingParams(task="embed")

    def pre_process(self, prompt: list[str], request_id: str | None = None, **kwargs: Any) -> Sequence[str]:
        return prompt  # one engine request per text; the engine batches them

    def post_process(self, model_output: Sequence[Any], request_id: str | None = None,
                     **kwargs: Any) -> dict[str, Any]:
        vectors = torch.nn.functional.normalize(torch.stack([o.outputs.data.float() for o in model_output]), dim=-1)
        return {"similarity": (vectors @ vectors.T).double().round(decimals=6).tolist()}
