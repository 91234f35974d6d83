"""ref_kv in the demo: a restart that finds its prefix on disk, in separate boots.

A KV connector changes the engine (vLLM builds it in the engine core and every worker), so
separate_run() starts its own servers with `--kv-transfer-config` naming RefKVConnector on a
fresh folder: the first computes a long prompt and saves its blocks; a second server, started
after the first has stopped, answers the same prompt with the prefix loaded from the folder,
which vLLM's own usage field (`prompt_tokens_details.cached_tokens`) shows, and the same text.
Its probe table shows the connector's scheduler half in the engine core and its worker half in
the worker.
"""

from __future__ import annotations

import json
import tempfile

ORDER = 96
PLUGIN = "ref_kv"
CHECK = "vllm_ref_kv:status"
ENV: dict[str, str] = {}
SERVER_ARGS: list[str] = []
SEPARATE_TITLE = "a server restarted on the same store folder (the harness's tiny Llama)"


def separate_run(model):
    # The harness's tiny Llama, not the demo's main model (a custom architecture that needs
    # its own plugin loaded).
    from vllm_ref_harness import VllmServer, tiny_llama
    from vllm_ref_kv.testing import BLOCK_SIZE, kv_transfer_config, prompt

    folder = tempfile.mkdtemp(prefix="ref-kv-demo-")
    args = ["--kv-transfer-config", json.dumps(kv_transfer_config(folder)), "--block-size", str(BLOCK_SIZE),
            "--dtype", "float32", "--enable-prompt-tokens-details"]
    ids = prompt(400, 1)
    answers = []
    for _ in range(2):
        with VllmServer(tiny_llama(), args=args, plugins=[PLUGIN], checks={PLUGIN: CHECK}, env=ENV) as server:
            done = server.client().completions.create(model=server.model, prompt=ids, max_tokens=8, temperature=0)
            details = done.usage.prompt_tokens_details
            answers.append((done.choices[0].text, details.cached_tokens if details else 0))
            report = server.wait_for_check(PLUGIN, ["engine_core", "worker"],
                                           until=lambda s: s is not None and s["effect"])
    (text1, cached1), (text2, cached2) = answers
    return report, [
        f"a {len(ids)}-token prompt, store folder {folder}",
        f"  server 1: {cached1} cached prompt tokens, answer {text1[:40]!r}...",
        f"  server 2 (restarted): {cached2} cached prompt tokens (loaded from the folder), answer {text2[:40]!r}...",
        f"  same answer: {text1 == text2}",
    ]


def exercise(server, model: str) -> list[str]:
    # Not used: the demo runs this plugin through separate_run (a connector changes the engine).
    return []
