"""ref_model in the demo: the server runs the Parallax architecture that only this plugin knows.

The demo serves model_path() for every plugin, so every row of the table is a Parallax engine.
"""

from __future__ import annotations

import pathlib

PLUGIN = "ref_model"
CHECK = "vllm_ref_model:status"
ENV: dict[str, str] = {}
SERVER_ARGS: list[str] = ["--dtype", "float32"]


def model_path() -> pathlib.Path:
    """The cached tiny Parallax checkpoint (made on first use under $REF_HARNESS_CACHE)."""
    from vllm_ref_model.testing import tiny_parallax

    return tiny_parallax()


def exercise(server, model: str) -> list[str]:
    import json

    arch = json.loads((pathlib.Path(model) / "config.json").read_text())["architectures"][0]
    client = server.client()
    chat = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hello"}], max_tokens=12, temperature=0)
    streamed = "".join(
        c.choices[0].text for c in client.completions.create(
            model=model, prompt="The capital of France is", max_tokens=12, temperature=0, stream=True))
    return [
        f"architecture {arch} (model_type parallax: unknown to vLLM and transformers)",
        f"chat (shipped template) -> {chat.choices[0].message.content!r}",
        f"streamed completion     -> {streamed!r}",
    ]
