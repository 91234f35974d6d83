"""Front-end process of an offline or AsyncLLM boot: `python -m vllm_ref_harness.driver SPEC OUT`.

Runs under `if __name__ == "__main__"` because the CPU platform spawns its engine processes.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import traceback
from typing import Any


def _sampling(spec: dict[str, Any], req: dict[str, Any]):
    from vllm import SamplingParams

    return SamplingParams(**{**spec["sampling"], **req.get("sampling", {})})


def _prompt(req: dict[str, Any]) -> Any:
    if "prompt_token_ids" in req:
        return {"prompt_token_ids": req["prompt_token_ids"]}
    return req["prompt"]


def _output(out: Any) -> dict[str, Any]:
    c = out.outputs[0]
    logprobs = None
    if c.logprobs is not None:
        logprobs = [{str(t): lp.logprob for t, lp in step.items()} for step in c.logprobs]
    return {"request_id": out.request_id, "text": c.text, "token_ids": list(c.token_ids),
            "finish_reason": c.finish_reason, "logprobs": logprobs,
            "prompt_token_ids": list(out.prompt_token_ids or [])}


def _target(call: str | None):
    if not call:
        return None
    module, _, attr = call.partition(":")
    return getattr(importlib.import_module(module), attr)


def run_llm(spec: dict[str, Any]) -> dict[str, Any]:
    from vllm import LLM

    llm = LLM(model=spec["model"], **spec["engine_args"])
    try:
        reqs = spec["requests"]
        outs = llm.generate([_prompt(r) for r in reqs], [_sampling(spec, r) for r in reqs],
                            use_tqdm=False) if reqs else []
        fn = _target(spec["call"])
        extra = fn(llm) if fn else None
        return {"outputs": [_output(o) for o in outs], "extra": extra}
    finally:
        llm.llm_engine.engine_core.shutdown()


async def run_async(spec: dict[str, Any]) -> dict[str, Any]:
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM

    engine = AsyncLLM.from_engine_args(AsyncEngineArgs(model=spec["model"], **spec["engine_args"]))
    try:
        async def one(i: int, req: dict[str, Any]) -> dict[str, Any]:
            final = None
            async for out in engine.generate(_prompt(req), _sampling(spec, req), request_id=f"req-{i}"):
                final = out
            return _output(final)

        outs = await asyncio.gather(*(one(i, r) for i, r in enumerate(spec["requests"])))
        fn = _target(spec["call"])
        extra = (await fn(engine)) if fn else None
        return {"outputs": list(outs), "extra": extra}
    finally:
        engine.shutdown()


def main(spec_path: str, out_path: str) -> int:
    with open(spec_path) as f:
        spec = json.load(f)
    try:
        result = run_llm(spec) if spec["mode"] == "llm" else asyncio.run(run_async(spec))
        code = 0
    except BaseException as exc:
        result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        code = 1
    with open(out_path, "w") as f:
        json.dump(result, f)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
