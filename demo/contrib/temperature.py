"""ref_temperature in the demo: one request with the processor's schedule, the same one without.

The processor is a `vllm.logits_processors` entry point: vLLM builds it in the workers (the
front end only loads the class to validate requests), so the effect column is True there.
"""

from __future__ import annotations

PLUGIN = "ref_temperature"
CHECK = "vllm_ref_temperature:status"
ENV: dict[str, str] = {}
SERVER_ARGS: list[str] = []

PROMPT = "Once upon a time there was"
# Hot for the first tokens, then cooled to 0: from token 4 on the continuation is greedy.
SCHEDULE = {"ref_temp_mode": "schedule", "ref_temp_start": 2.0, "ref_temp_end": 0.0, "ref_temp_steps": 4}


def exercise(server, model: str) -> list[str]:
    client = server.client()

    def run(**kw):
        out = client.completions.create(model=model, prompt=PROMPT, max_tokens=10, seed=3,
                                        extra_body={"ignore_eos": True, **kw.pop("extra", {})}, **kw)
        return out.choices[0].text

    plain = run(temperature=1.0)
    scheduled = run(temperature=1.0, extra={"vllm_xargs": SCHEDULE})
    greedy = run(temperature=0)
    return [
        f"temperature 1, seed 3, no processor keys -> {plain!r}",
        f"same + vllm_xargs schedule 2.0 -> 0 over 4 tokens -> {scheduled!r}",
        f"greedy, for comparison -> {greedy!r}",
    ]
