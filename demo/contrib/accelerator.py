"""ref_accelerator in the demo: one short request on the simulated device, in its own boot.

A platform plugin replaces the platform of every process it runs in, so it cannot share the
demo's server with the other plugins: separate_run() boots an offline engine with the platform
active and returns its probe report (the demo prints it as a table of its own).
"""

from __future__ import annotations

import sys

PLUGIN = "ref_accelerator"
CHECK = "contrib.accelerator:effect"
ENV: dict[str, str] = {"VLLM_REF_ACCELERATOR": "1"}
SERVER_ARGS: list[str] = []
PROMPT = "The capital of France is"


def effect() -> bool:
    """True where this process's current_platform is the simulated accelerator."""
    mod = sys.modules.get("vllm.platforms")
    current = vars(mod).get("_current_platform") if mod is not None else None
    return type(current).__name__ == "RefAcceleratorPlatform"


def attention_calls() -> int:
    """Attention calls this process ran on the simulated device's Triton kernels."""
    mod = sys.modules.get("vllm_ref_accelerator.attention")
    return int(mod.USAGE["attention_calls"]) if mod is not None else 0


def separate_run(model):
    from pathlib import Path

    from vllm_ref_harness import run_engine

    demo_dir = str(Path(__file__).resolve().parents[1])
    run = run_engine(
        # The demo's model is the custom architecture, so ref_model is selected too.
        model, engine_args={"dtype": "float32"}, plugins=[PLUGIN, "ref_model"],
        requests=[{"prompt": PROMPT, "sampling": {"max_tokens": 6, "temperature": 0.0}}],
        checks={PLUGIN: CHECK, "attention_calls": "contrib.accelerator:attention_calls"},
        env={**ENV, "PYTHONPATH": demo_dir}, timeout=600)
    calls = {r.label: r.checks.get("attention_calls") for r in run.report.processes("worker")}
    return run.report, [
        f"completion on the simulated device -> {run.outputs[0]['text']!r}",
        f"attention calls on the Triton kernels (interpreted), per worker: {calls}",
    ]


def exercise(server, model: str) -> list[str]:
    # Not used: the demo runs this plugin through separate_run (it would take over the server).
    return []
