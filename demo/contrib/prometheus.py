"""ref_prometheus in the demo: its vllm_ref_* metrics on the server's /metrics, beside vLLM's."""

from __future__ import annotations

from vllm_ref_harness import metric_sum

PLUGIN = "ref_prometheus"
CHECK = "vllm_ref_prometheus:status"
ENV: dict[str, str] = {}
SERVER_ARGS: list[str] = []


def exercise(server, model: str) -> list[str]:
    client = server.client()
    for i in range(3):
        client.completions.create(model=model, prompt=f"Metrics demo {i}", max_tokens=8, temperature=0,
                                  extra_body={"ignore_eos": True})
    text = server.metrics()
    p = "vllm_ref_"
    steps = metric_sum(text, p + "step_decode_tokens_count")
    reasons = ", ".join(f"{r}={metric_sum(text, p + 'requests_finished_total', reason=r):g}"
                        for r in ("stop", "length_max_tokens", "length_context", "abort"))
    prompt = metric_sum(text, p + "step_prefill_tokens_sum")
    prefill_steps = steps - metric_sum(text, p + "step_prefill_tokens_bucket", le="0.0")
    durations = metric_sum(text, p + "step_duration_seconds_count")
    mean_ms = 1000 * metric_sum(text, p + "step_duration_seconds_sum") / max(durations, 1)
    return [
        f"requests finished by reason: {reasons}",
        f"engine steps: {steps:g}; tokens generated: {metric_sum(text, p + 'step_decode_tokens_sum'):g} "
        f"(vLLM's own vllm:generation_tokens_total: {metric_sum(text, 'vllm:generation_tokens_total'):g})",
        f"steps with a prefill: {prefill_steps:g} ({prompt / max(prefill_steps, 1):.1f} prompt tokens each), "
        f"decode-only steps: {steps - prefill_steps:g}",
        f"engine step duration (mean): {mean_ms:.1f} ms",
    ]
