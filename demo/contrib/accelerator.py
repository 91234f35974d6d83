"""ref_accelerator in the demo: one short request on the simulated device, in its own boot.

A platform plugin replaces the platform of every process it runs in, so it cannot share the
demo's server with the other plugins: separate_run() boots an offline engine with the platform
active and returns its probe report (the demo prints it as a table of its own).
"""

from __future__ import annotations

PLUGIN = "ref_accelerator"
CHECK = "vllm_ref_accelerator:status"
ENV: dict[str, str] = {"REF_ACCELERATOR": "1"}
SERVER_ARGS: list[str] = []
PROMPT = "The capital of France is"
SEPARATE_TITLE = "a separate boot on the simulated device"


def separate_run(model):
    from vllm_ref_harness import run_engine

    run = run_engine(
        # The demo's model is the custom architecture, so ref_model is selected too.
        model, engine_args={"dtype": "float32"}, plugins=[PLUGIN, "ref_model"],
        requests=[{"prompt": PROMPT, "sampling": {"max_tokens": 6, "temperature": 0.0}}],
        checks={PLUGIN: CHECK}, env=ENV, timeout=600)
    layers = {r.label: (r.checks.get(PLUGIN) or {}).get("attention") for r in run.report.processes("worker")}
    kernels = {r.label: (r.checks.get(PLUGIN) or {}).get("kernels") for r in run.report.processes("worker")}
    return run.report, [
        f"completion on the simulated device -> {run.outputs[0]['text']!r}",
        f"attention layers on the Triton kernels, per worker: {layers}; kernels ran as: {kernels}",
    ]


def exercise(server, model: str) -> list[str]:
    # Not used: the demo runs this plugin through separate_run (it would take over the server).
    return []
