"""End to end: `vllm serve` with the installed plugin, driven by the openai client, fixed seeds.

One server boot for the whole module (about 1 minute on 2 cores). The effects are measured on
sampled tokens: a schedule that cools to 0 after N tokens makes the rest of the continuation
equal the greedy one; hot settings raise the empirical entropy of sampled tokens.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
import requests
from vllm_ref_harness import metric_sum, tiny_llama

pytestmark = pytest.mark.vllm
PROMPT = "Once upon a time there was"
# Process-wide defaults for requests that only name the mode (see test_env_defaults_apply).
ENV_DEFAULTS = {"REF_TEMPERATURE_START": "3.0", "REF_TEMPERATURE_END": "0", "REF_TEMPERATURE_STEPS": "6"}


@pytest.fixture(scope="module")
def server(vllm_module):
    return vllm_module.serve(
        tiny_llama(),
        # float32: in bfloat16 the tiny model has exact logit ties, and argmax order is arbitrary.
        args=["--seed", "0", "--dtype", "float32"],
        # Only this package's entry point matters here; VLLM_PLUGINS does not filter
        # logits processors, and naming ours keeps other general plugins out of this boot.
        plugins=["ref_temperature"],
        checks={"status": "vllm_ref_temperature:status"},
        env=ENV_DEFAULTS,
        timeout=600,
    )


@pytest.fixture(scope="module")
def client(server):
    return server.client(timeout=120)


def complete(client, prompt, *, xargs=None, **kw):
    extra = {"return_token_ids": True, "ignore_eos": True}
    if xargs is not None:
        extra["vllm_xargs"] = xargs
    return client.completions.create(model=str(tiny_llama()), prompt=prompt, extra_body=extra, **kw)


def tokens(client, prompt, **kw) -> list[int]:
    return list(complete(client, prompt, **kw).choices[0].token_ids)


def prompt_ids(client) -> list[int]:
    return list(complete(client, PROMPT, max_tokens=1, temperature=0).choices[0].prompt_token_ids)


def schedule(start, end, steps):
    return {"ref_temp_mode": "schedule", "ref_temp_start": start, "ref_temp_end": end,
            "ref_temp_steps": steps}


def empirical_entropy(samples: list[int]) -> float:
    n = len(samples)
    return -sum(c / n * math.log(c / n) for c in Counter(samples).values())


def first_tokens(client, xargs=None, n=64) -> list[int]:
    out = complete(client, PROMPT, xargs=xargs, n=n, max_tokens=1, temperature=1.0, seed=1234)
    return [c.token_ids[0] for c in out.choices]


def test_schedule_to_zero_equals_greedy_from_token_n(client):
    n_hot, total = 6, 16
    ids = prompt_ids(client)
    greedy_from_prompt = tokens(client, ids, max_tokens=total, temperature=0)
    prefixes_differ = 0
    for seed in range(6):
        sampled = tokens(client, ids, xargs=schedule(3.0, 0.0, n_hot), max_tokens=total, temperature=1.0,
                         seed=seed)
        assert len(sampled) == total
        # From token N on the temperature is ~0: the continuation is the greedy one of its own prefix.
        greedy_tail = tokens(client, ids + sampled[:n_hot], max_tokens=total - n_hot, temperature=0)
        assert sampled[n_hot:] == greedy_tail, f"seed {seed}"
        prefixes_differ += sampled[:n_hot] != greedy_from_prompt[:n_hot]
    # ...while the hot start really sampled.
    assert prefixes_differ >= 3
    # Control: without the processor the same seeds do not follow greedy after token N.
    followed = 0
    for seed in range(6):
        plain = tokens(client, ids, max_tokens=total, temperature=1.0, seed=seed)
        tail = tokens(client, ids + plain[:n_hot], max_tokens=total - n_hot, temperature=0)
        followed += plain[n_hot:] == tail
    assert followed < 6


def test_hot_raises_and_cold_lowers_empirical_entropy(client):
    base = empirical_entropy(first_tokens(client))
    hot = empirical_entropy(first_tokens(client, schedule(4.0, 4.0, 0)))
    cold = empirical_entropy(first_tokens(client, schedule(0.3, 0.3, 0)))
    adaptive_hot = empirical_entropy(first_tokens(client, {"ref_temp_mode": "entropy", "ref_temp_min": 3.0,
                                                           "ref_temp_max": 5.0}))
    assert hot > base + 0.5, (base, hot)
    assert cold < base - 0.3, (base, cold)
    assert adaptive_hot > base + 0.5, (base, adaptive_hot)


def test_entropy_mode_at_zero_is_greedy(client):
    ids = prompt_ids(client)
    greedy = tokens(client, ids, max_tokens=12, temperature=0)
    for seed in range(3):
        cold = tokens(client, ids, xargs={"ref_temp_mode": "entropy", "ref_temp_min": 0, "ref_temp_max": 0},
                      max_tokens=12, temperature=1.0, seed=seed)
        assert cold == greedy


def test_env_defaults_apply(client):
    ids = prompt_ids(client)
    explicit = tokens(client, ids, xargs=schedule(3.0, 0.0, 6), max_tokens=10, temperature=1.0, seed=7)
    defaulted = tokens(client, ids, xargs={"ref_temp_mode": "schedule"}, max_tokens=10, temperature=1.0,
                       seed=7)
    assert defaulted == explicit


def test_requests_without_our_keys_are_untouched_in_a_mixed_batch(client):
    ids = prompt_ids(client)
    kw = dict(max_tokens=12, temperature=1.0, seed=99)
    alone = tokens(client, ids, **kw)
    assert tokens(client, ids, xargs={"another_plugin_key": 1}, **kw) == alone
    # The same request batched with requests that are scaled: its row is left alone.
    with ThreadPoolExecutor(8) as pool:
        futs = [pool.submit(tokens, client, ids, xargs=schedule(2.0, 0.5, 4), max_tokens=12, temperature=1.0,
                            seed=s) for s in range(6)]
        mine = [pool.submit(tokens, client, ids, **kw) for _ in range(2)]
        assert [f.result() for f in mine] == [alone, alone]
        assert all(len(f.result()) == 12 for f in futs)


@pytest.mark.parametrize(
    "xargs, needle",
    [
        ({"ref_temp_mode": "schedule", "ref_temp_start": -1.0}, "ref_temp_start = -1.0 is invalid"),
        ({"ref_temp_mode": "schedule", "ref_temp_end": math.nan}, "ref_temp_end = nan is invalid"),
        ({"ref_temp_mode": "schedule", "ref_temp_steps": "many"}, "ref_temp_steps = 'many' is invalid"),
        ({"ref_temp_mode": "schedule", "ref_temp_bogus": 1}, "unknown extra_args key(s) ref_temp_bogus"),
        ({"ref_temp_mode": "freezing"}, "accepted values: schedule, entropy"),
    ],
)
def test_bad_values_are_http_400_and_server_keeps_serving(server, client, xargs, needle):
    if any(isinstance(v, float) and math.isnan(v) for v in xargs.values()):
        # The openai client refuses to encode NaN; the server's JSON parser accepts it.
        body = json.dumps({"model": str(tiny_llama()), "prompt": PROMPT, "max_tokens": 4,
                           "vllm_xargs": xargs})
        resp = requests.post(server.url + "/v1/completions", data=body, timeout=60,
                             headers={"Content-Type": "application/json"})
        status, text = resp.status_code, resp.text
    else:
        with pytest.raises(openai.BadRequestError) as err:
            complete(client, PROMPT, xargs=xargs, max_tokens=4, temperature=1.0)
        status, text = err.value.status_code, str(err.value)
    assert status == 400
    assert "ref_temperature" in text and needle in text
    ok = complete(client, PROMPT, xargs=schedule(1.0, 0.5, 2), max_tokens=4, temperature=1.0, seed=0)
    assert len(ok.choices[0].token_ids) == 4


# Issue 27: hostile ref_temp_* values against the real server (a bounded batch), sent as raw JSON
# so NaN, huge integers and lone surrogates arrive as a hostile client would send them.
HOSTILE_XARGS = [
    '{"ref_temp_mode": "schedule", "ref_temp_steps": ' + str(2**64 - 1) + "}",  # the largest int vLLM passes on
    '{"ref_temp_mode": "schedule", "ref_temp_start": ' + str(-(2**63)) + "}",
    '{"ref_temp_mode": "schedule", "ref_temp_start": 1e308}', '{"ref_temp_mode": "schedule", "ref_temp_end": 101}',
    '{"ref_temp_mode": "schedule", "ref_temp_end": Infinity}', '{"ref_temp_mode": "schedule", "ref_temp_end": -1e-320}',
    '{"ref_temp_mode": "schedule", "ref_temp_steps": 10000001}', '{"ref_temp_mode": "schedule", "ref_temp_steps": 2.5}',
    '{"ref_temp_mode": "entropy", "ref_temp_exponent": 1e-320}',
    '{"ref_temp_mode": "entropy", "ref_temp_exponent": 1e308}',
    '{"ref_temp_mode": "entropy", "ref_temp_min": 3, "ref_temp_max": 2}', '{"ref_temp_mode": "\\ud800"}',
    '{"ref_temp_mode": "%s"}' % ("x" * 100_000), '{"ref_temp_mode": ["schedule"]}', '{"ref_temp_mode": true}',
    '{"ref_temp_mode": "schedule", "ref_temp_%s": 1}' % ("k" * 10_000), '{"ref_temp_start": 1}',
]
# Integers beyond [-2^63, 2^64) vLLM refuses itself, before any plugin sees them (its own 400).
VLLM_REFUSES = ['{"ref_temp_mode": "schedule", "ref_temp_steps": %s}' % ("9" * 400),
                '{"ref_temp_mode": "schedule", "ref_temp_start": %s}' % ("1" * 400)]


def test_hostile_values_are_400s_naming_the_plugin_and_change_nothing(server, client):
    finished = lambda: metric_sum(server.metrics(), "vllm:request_success_total")  # noqa: E731
    before = finished()
    for xargs in HOSTILE_XARGS + VLLM_REFUSES:
        body = '{"model": ' + json.dumps(str(tiny_llama())) + ', "prompt": "Hi", "max_tokens": 2, "vllm_xargs": ' \
            + xargs + "}"
        r = requests.post(server.url + "/v1/completions", data=body.encode(), timeout=60,
                          headers={"Content-Type": "application/json"})
        who = "ref_temperature" if xargs in HOSTILE_XARGS else "extra_args integers must be between"
        assert r.status_code == 400 and who in r.text, (xargs[:80], r.status_code, r.text[:300])
        assert len(r.text) < 3000  # the refusal does not echo a 100 000-character value
    assert finished() == before  # nothing refused reached the engine
    ok = complete(client, PROMPT, xargs=schedule(1.0, 0.5, 2), max_tokens=4, temperature=1.0, seed=0)
    assert len(ok.choices[0].token_ids) == 4
    assert finished() == before + 1


def test_probe_saw_the_processor_in_the_workers(server, client):
    complete(client, PROMPT, xargs=schedule(1.0, 0.5, 2), max_tokens=2, temperature=1.0)
    rep = server.wait_for_check("status", roles=("worker",), until=lambda s: s["scaled"])
    rep.assert_loaded("ref_temperature", roles=("front_end", "worker"), group="vllm.logits_processors")
    rep.assert_check("status", lambda s: s["effect"] and s["v1"] == 1 and s["scaled"], roles=("worker",))
    # The front end loads the class only to validate requests; it never builds one.
    rep.assert_check("status", lambda s: not s["effect"] and not s["scaled"] and s["gate"]["active"],
                     roles=("front_end",))
