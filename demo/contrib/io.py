"""ref_io in the demo: one long document embedded in one /pooling request, in its own boot.

An IO processor serves a pooling model, and the demo's main server runs a generative one, so
separate_run() starts a second server on the harness's tiny embedding model with
`--io-processor-plugin ref_io`, sends a document longer than the model's context, and prints
the windows the plugin cut and the one vector it returned. Its probe table shows the plugin in
the front end only (vLLM loads IO processors nowhere else).
"""

from __future__ import annotations

ORDER = 95
PLUGIN = "ref_io"
CHECK = "vllm_ref_io:status"
ENV: dict[str, str] = {}
SERVER_ARGS: list[str] = []
SEPARATE_TITLE = "a separate boot on a pooling model (the harness's tiny embedding Llama)"
DOCUMENT = " ".join(f"Sentence {i} of a report about plugins, engines and the processes they run in."
                    for i in range(60))


def separate_run(model):
    import requests
    from vllm_ref_harness import VllmServer, tiny_llama_embed

    with VllmServer(tiny_llama_embed(), args=["--runner", "pooling", "--io-processor-plugin", PLUGIN], plugins=[PLUGIN],
                    checks={PLUGIN: CHECK}, env=ENV) as server:
        body = {"data": {"text": DOCUMENT, "return_windows": True}}
        r = requests.post(server.url + "/pooling", json=body, headers=server.headers(), timeout=300)
        r.raise_for_status()
        data = r.json()["data"]
        bad = requests.post(server.url + "/pooling", json={"data": {"text": DOCUMENT, "aggregate": "median"}},
                            headers=server.headers(), timeout=300)
        report = server.wait_for_check(PLUGIN, ["front_end"])
    spans = ", ".join(f"{w['start']}-{w['end']} ({w['tokens']} tok)" for w in data["windows"])
    norm = sum(x * x for x in data["embedding"]) ** 0.5
    return report, [
        f"POST /pooling with a {len(DOCUMENT)}-character document ({data['tokens']} tokens):",
        f"  {len(data['windows'])} windows, character spans {spans}",
        f"  one document vector of {len(data['embedding'])} numbers, norm {norm:.4f}",
        f"an unknown aggregation -> HTTP {bad.status_code}: {bad.text[:160]}",
    ]


def exercise(server, model: str) -> list[str]:
    # Not used: the demo runs this plugin through separate_run (it needs a pooling model).
    return []
