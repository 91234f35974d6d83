"""The request, its windows and their aggregation: plain Python and torch, no vLLM.

parse_request() turns the request's `data` into a Request (or raises BadRequest, a ValueError
that vLLM answers with 400); plan() cuts the token ids into windows; aggregate() turns the
windows' vectors into the document's. The processor (processor.py) only wires them to vLLM,
so everything here is tested without an engine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import PLUGIN

AGGREGATES = ("mean", "max", "first", "none")
FIELDS = ("text", "window", "overlap", "aggregate", "return_windows")


class BadRequest(ValueError):
    """A request the plugin refuses; vLLM's server turns a ValueError into a 400."""

    def __init__(self, field: str, problem: str, accepted: str):
        super().__init__(f"{PLUGIN}: field {field!r} {problem}; accepted: {accepted}")
        self.field = field


@dataclass(frozen=True)
class Request:
    text: str
    window: int | None  # tokens per window, specials included; None: the served max_model_len
    overlap: int
    aggregate: str
    return_windows: bool


@dataclass(frozen=True)
class Window:
    start: int  # character span of the document it covers
    end: int
    token_ids: list[int]  # what the engine gets (special tokens included)
    tokens: int  # document tokens in it (specials not counted): the weight of "mean"


def shown(value: Any, limit: int = 80) -> str:
    """repr(value) cut to `limit` characters: a refusal echoes what it refuses, never all of it."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # ValueError: an int too long for repr
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else f"{text[:limit - 12]}...({len(text)} chars)"


def _int(data: dict[str, Any], field: str, accepted: str) -> int | None:
    value = data.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(field, f"must be an integer, got {type(value).__name__}", accepted)
    return value


def parse_request(data: object, max_model_len: int, specials: int, max_chars: int) -> Request:
    """Validate the request's `data` against the served model (max_model_len, the special
    tokens each window carries) and the size limit; every refusal names the field."""
    if not isinstance(data, dict):
        raise BadRequest("data", f"must be a JSON object, got {type(data).__name__}",
                         f"an object with keys {', '.join(FIELDS)}")
    # Named as given where printable and short; keys of other types (offline callers) sort too.
    unknown = sorted(k if isinstance(k, str) and len(k) <= 64 and k.isprintable() else shown(k, 40)
                     for k in data if k not in FIELDS)
    if unknown:
        raise BadRequest(unknown[0], "is not a field of this plugin", ", ".join(FIELDS))
    text = data.get("text")
    text_ok = f"a non-empty string of valid Unicode (no lone surrogates), at most {max_chars} characters"
    if not isinstance(text, str):
        raise BadRequest("text", f"must be a string, got {type(text).__name__}", text_ok)
    if not text.strip():
        raise BadRequest("text", "is empty", text_ok)
    if len(text) > max_chars:
        raise BadRequest("text", f"has {len(text)} characters, above the limit of this server",
                         f"{text_ok} (REF_IO_MAX_CHARS)")
    try:
        # JSON's "\ud800" escape gives a lone surrogate: no tokenizer can encode it, and the
        # refusal belongs here, naming the field, rather than in the tokenizer.
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadRequest("text", f"has a lone surrogate {exc.object[exc.start]!r} at character {exc.start}",
                         text_ok) from None
    smallest = specials + 1
    window_ok = f"an integer from {smallest} to {max_model_len} (the served max_model_len)"
    window = _int(data, "window", window_ok)
    if window is not None and not smallest <= window <= max_model_len:
        raise BadRequest("window", f"is {window}", window_ok)
    content = (window or max_model_len) - specials
    overlap_ok = f"an integer from 0 to {content - 1} (below the window's {content} document tokens)"
    overlap = _int(data, "overlap", overlap_ok)
    if overlap is not None and not 0 <= overlap < content:
        raise BadRequest("overlap", f"is {overlap}", overlap_ok)
    aggregate = data.get("aggregate") or "mean"  # null means the default, as for every optional field
    if not isinstance(aggregate, str) or aggregate not in AGGREGATES:
        raise BadRequest("aggregate", f"is {shown(aggregate)}", " | ".join(map(repr, AGGREGATES)))
    return_windows = data.get("return_windows")
    return_windows = False if return_windows is None else return_windows
    if not isinstance(return_windows, bool):
        raise BadRequest("return_windows", f"must be a boolean, got {type(return_windows).__name__}",
                         "true or false")
    return Request(text, window, overlap or 0, aggregate, return_windows)


def plan(req: Request, ids: Sequence[int], offsets: Sequence[tuple[int, int]], max_model_len: int,
         wrap: Any = None, specials: int = 0) -> list[Window]:
    """Cut the document's token ids (no special tokens) into windows of at most
    `window - specials` document tokens, each starting `overlap` tokens before the previous
    one ended; `wrap(ids)` adds the model's special tokens to each (None: none)."""
    if not ids:
        raise BadRequest("text", "has no tokens for this model's tokenizer", "text that tokenizes to tokens")
    size = (req.window or max_model_len) - specials
    step = size - req.overlap
    windows = []
    for start in range(0, max(1, math.ceil((len(ids) - req.overlap) / step)) * step, step):
        chunk = list(ids[start:start + size])
        body = list(wrap(chunk)) if wrap else chunk
        assert len(body) <= max_model_len, (len(body), max_model_len)  # the window check above
        windows.append(Window(offsets[start][0], offsets[start + len(chunk) - 1][1], body, len(chunk)))
    return windows


def aggregate(how: str, vectors: Sequence[Any], tokens: Sequence[int]) -> Any:
    """The document's vector from its windows' (torch, float32, L2-normalised); None for "none".

    mean: weighted by each window's document tokens; max: element-wise; first: the first
    window's. The result is L2-normalised again (a mean of unit vectors is shorter than 1).
    """
    import torch

    if how == "none":
        return None
    stack = torch.stack([torch.as_tensor(v, dtype=torch.float32).reshape(-1) for v in vectors])
    if how == "first":
        doc = stack[0]
    elif how == "max":
        doc = stack.max(dim=0).values
    else:
        w = torch.tensor(tokens, dtype=torch.float32)
        doc = (stack * w[:, None]).sum(dim=0) / w.sum()
    return torch.nn.functional.normalize(doc, dim=0)
