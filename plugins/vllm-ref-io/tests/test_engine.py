"""The plugin in real engines, on the harness's tiny pooling model (`tiny_llama_embed`):

- offline `LLM.encode(..., pooling_task="plugin")` and online `POST /pooling` give the numbers of
  a plain transformers reference (vllm_ref_io.testing.reference) and the same numbers as each other;
- the probe shows the plugin loaded, and built, in the front end only;
- 16 concurrent requests of different lengths each get their own answer;
- bad input is a 400 naming the plugin, the field and what is accepted, and the server keeps
  serving.

One server for the module (the online tests share it) and one offline boot.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from vllm_ref_io.testing import ENGINE, EXTRA, SERVE_ARGS, assert_close, document, reference

pytestmark = pytest.mark.vllm

CHECKS = {"io": "vllm_ref_io:status"}
MAX_CHARS = 20_000
CASES = [
    {"text": document(90, 1)},  # the default window (max_model_len 512): several windows, mean
    {"text": document(20, 2), "window": 64, "overlap": 16, "aggregate": "max", "return_windows": True},
    {"text": document(14, 3), "window": 100, "aggregate": "first"},
    {"text": document(12, 4), "window": 48, "overlap": 8, "aggregate": "none"},
    {"text": EXTRA + " The quick brown fox.", "window": 8, "return_windows": True},
    {"text": "Hello, my name is Ada.", "return_windows": True},  # one window, shorter than it
]


def pool(server, data, **kw):
    return requests.post(server.url + "/pooling", json={"model": server.model, "data": data}, timeout=300, **kw)


@pytest.fixture(scope="module")
def server(vllm_module, embed_model):
    return vllm_module.serve(embed_model, plugins=["ref_io"], checks=CHECKS, args=SERVE_ARGS, timeout=600,
                             env={"REF_IO_MAX_CHARS": str(MAX_CHARS)})


@pytest.fixture(scope="module")
def online(server):
    answers = []
    for data in CASES:
        r = pool(server, data)
        assert r.status_code == 200, r.text
        answers.append(r.json()["data"])
    return answers


@pytest.fixture(scope="module")
def offline(vllm_module, embed_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("io-requests") / "requests.json"
    path.write_text(json.dumps([*CASES, {"text": ""}, {"text": "x", "aggregate": "median"}]))
    return vllm_module.run(embed_model, engine_args=ENGINE, call="vllm_ref_io.testing:encode", plugins=["ref_io"],
                           checks=CHECKS, env={"REF_IO_TEST_REQUESTS": str(path)},
                           timeout=600)


def test_the_cases_cover_what_they_claim(online):
    # Several windows where the test says so, or the comparisons below prove little.
    assert "windows" not in online[0] and online[0]["tokens"] > 2 * 512
    assert len(online[1]["windows"]) >= 4 and len(online[3]["windows"]) >= 4
    assert len(online[5]["windows"]) == 1


@pytest.mark.parametrize("case", range(len(CASES)))
def test_online_equals_the_transformers_reference(online, embed_model, case):
    got, want = online[case], reference(embed_model, CASES[case])
    assert_close(got, want)
    assert ("windows" in got) == bool(CASES[case].get("return_windows") or CASES[case].get("aggregate") == "none")
    if got["embedding"] is not None:
        assert abs(sum(x * x for x in got["embedding"]) - 1) < 1e-5  # L2-normalised


def test_offline_gives_the_online_numbers(offline, online, embed_model):
    got = offline.extra
    for off, on in zip(got[:len(CASES)], online, strict=True):
        assert "error" not in off, off
        assert_close(off, on, atol=1e-6)
    # Offline refusals carry the same message as the server's 400.
    assert "ref_io" in got[-2]["error"] and "'text'" in got[-2]["error"]
    assert "'aggregate'" in got[-1]["error"] and "'mean'" in got[-1]["error"]


def test_offline_plugin_lives_in_the_front_end_only(offline):
    rep = offline.report
    rep.assert_loaded("ref_io", roles=("front_end",), group="vllm.io_processor_plugins")
    rep.assert_not_loaded("ref_io", roles=("engine_core", "worker"))
    rep.assert_check("io", lambda s: s["effect"] and s["requests"] == len(CASES), roles=("front_end",))
    rep.assert_check("io", lambda s: not s["effect"], roles=("engine_core", "worker"))


def test_online_plugin_lives_in_the_front_end_only(server, online):
    rep = server.wait_for_check("io", ("front_end", "engine_core", "worker"), timeout=120,
                                until=lambda s: s is not None)
    rep.assert_loaded("ref_io", roles=("front_end",), group="vllm.io_processor_plugins")
    rep.assert_not_loaded("ref_io", roles=("engine_core", "worker"))
    rep.assert_check("io", lambda s: s["effect"] and s["gate"]["active"], roles=("front_end",))
    rep.assert_check("io", lambda s: not s["effect"], roles=("engine_core", "worker"))


def test_sixteen_concurrent_requests_each_get_their_own_answer(server):
    reqs = [{"text": document(3 + 2 * i, 100 + i), "window": 32 + 4 * i, "overlap": i % 5,
             "aggregate": ("mean", "max", "first")[i % 3], "return_windows": True} for i in range(16)]
    alone = [pool(server, d).json()["data"] for d in reqs]
    with ThreadPoolExecutor(16) as ex:
        together = [r.json()["data"] for r in ex.map(lambda d: pool(server, d), reqs)]
    assert len({a["tokens"] for a in alone}) == 16  # all different, so a mix-up cannot pass
    for a, t in zip(alone, together, strict=True):
        assert_close(t, a, atol=1e-5)  # batched with the others vs. alone: float noise only


BAD = [
    ({"text": ""}, "text", "a non-empty string"),
    ({"text": "   "}, "text", "a non-empty string"),
    ({"text": 5}, "text", "a non-empty string"),
    ({"window": 64}, "text", "a non-empty string"),
    ({"text": "x" * (MAX_CHARS + 1)}, "text", "REF_IO_MAX_CHARS"),
    ({"text": "Hello", "window": 513}, "window", "to 512"),
    ({"text": "Hello", "window": 0}, "window", "to 512"),
    ({"text": "Hello", "window": "64"}, "window", "an integer"),
    ({"text": "Hello", "window": 64, "overlap": 64}, "overlap", "from 0 to 63"),
    ({"text": "Hello", "overlap": -1}, "overlap", "from 0 to 511"),
    ({"text": "Hello", "aggregate": "median"}, "aggregate", "'mean' | 'max' | 'first' | 'none'"),
    ({"text": "Hello", "return_windows": "yes"}, "return_windows", "true or false"),
    ({"text": "Hello", "colour": "red"}, "colour", "text, window, overlap, aggregate, return_windows"),
    ("Hello", "data", "an object"),
    ({"text": "Hello \ud800 world"}, "text", "lone surrogate"),  # issue 27: was the tokenizer's 400
]


@pytest.mark.parametrize(("data", "field", "accepted"), BAD, ids=[b[1] + str(i) for i, b in enumerate(BAD)])
def test_bad_input_is_a_400_naming_plugin_field_and_accepted(server, data, field, accepted):
    r = pool(server, data)
    assert r.status_code == 400, r.text
    msg = r.json()["error"]["message"]
    assert "ref_io" in msg and f"'{field}'" in msg and accepted in msg, msg


def test_server_keeps_serving_after_bad_input(server, online):
    for data, _, _ in BAD:
        pool(server, data)
    assert requests.get(server.url + "/health", timeout=30).status_code == 200
    r = pool(server, CASES[1])
    assert r.status_code == 200
    assert_close(r.json()["data"], online[1], atol=1e-6)


# Issue 27: hostile `data` against the real server (bounded batch): (data, field it must name).
HOSTILE = [
    ({"text": "Hello", "window": 10**400}, "window"), ({"text": "Hello", "overlap": -(10**400)}, "overlap"),
    ({"text": "Hello", "window": 1e308}, "window"), ({"text": "Hello", "window": "9" * 5000}, "window"),
    ({"text": "Hello", "aggregate": {"k": [[["mean"]]]}}, "aggregate"), ({"text": "Hello", "aggregate": ["mean"]},
                                                                         "aggregate"),
    ({"text": "\udfff"}, "text"), ({"text": "a" * 10 + "\udc80"}, "text"), ({"text": "x" * 200_000}, "text"),
    ({"text": ["Hello"]}, "text"), ({"text": None}, "text"), ({"text": "Hello", "return_windows": "true"},
                                                               "return_windows"),
    ({"text": "Hello", "x" * 10_000: 1}, "xxxx"), (10**400, "data"), ([{"text": "Hello"}], "data"),
]


def _served(server) -> int:
    """The front end's request count once it has settled: the probe polls every 0.25 s, so one
    read can lag the requests that earlier tests just finished."""
    last = None
    for _ in range(100):
        rep = server.wait_for_check("io", ("front_end",), timeout=120, until=lambda s: "requests" in s)
        now = next(r for r in rep if r.role == "front_end").checks["io"]["requests"]
        if now == last:
            return now
        last = now
        time.sleep(0.6)
    raise AssertionError(f"the front end's request count never settled (last {last})")


def test_hostile_data_is_refused_naming_the_field_and_counts_nothing(server, online):
    served = _served(server)
    for data, field in HOSTILE:
        r = pool(server, data)
        assert r.status_code == 400, (repr(data)[:80], r.status_code, r.text[:300])
        msg = r.json()["error"]["message"]
        assert "ref_io" in msg and field in msg and "accepted" in msg and len(msg) < 2000, msg[:300]
    assert pool(server, CASES[5]).status_code == 200  # still serving
    # The front end's counter moves by the one good request only: refusals leave no trace.
    rep = server.wait_for_check("io", ("front_end",), timeout=60, until=lambda s: s["requests"] != served)
    assert next(r for r in rep if r.role == "front_end").checks["io"]["requests"] == served + 1
