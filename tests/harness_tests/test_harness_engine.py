"""The harness against a real vLLM: where a plugin loaded, TP=2, failures, serving, teardown."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from vllm_ref_harness import procs

pytestmark = pytest.mark.vllm
CHECK = {"registered": "vllm_ref_probe_plugin:registered"}
PROMPT = [{"prompt": "Hello, my name is"}]
GREEDY = {"max_tokens": 8, "temperature": 0.0}


def test_tp2_offline_every_process_and_the_filter(vllm, tiny_model, probe_plugin_site) -> None:
    run = vllm.run(
        tiny_model, engine_args={"tensor_parallel_size": 2}, requests=PROMPT, sampling=GREEDY,
        plugins=["ref_probe_ok"], checks=CHECK, env={"PYTHONPATH": probe_plugin_site}, fresh_cache=True,
    )
    rep = run.report
    assert len(run.outputs[0]["token_ids"]) == 8
    workers = rep.processes("worker")
    assert sorted(w.rank for w in workers) == [0, 1], rep.describe()
    assert len(rep.processes("front_end")) == 1 and len(rep.processes("engine_core")) == 1
    rep.assert_loaded("ref_probe_ok", roles=("front_end", "engine_core", "worker", "registry"))
    rep.assert_check("registered", ["ok"], roles=("front_end", "engine_core", "worker"))
    # VLLM_PLUGINS filtered these out: discovered everywhere, loaded nowhere.
    rep.assert_not_loaded("ref_probe_skip", roles=("front_end", "engine_core", "worker", "registry"))
    assert {r.status("ref_probe_skip") for r in rep} == {"filtered"}
    # vLLM's own built-in general plugins are filtered by VLLM_PLUGINS too.
    assert all(r.status("lora_filesystem_resolver") == "filtered" for r in rep)


def test_a_raising_plugin_is_reported_with_its_error(vllm, tiny_model, probe_plugin_site) -> None:
    run = vllm.run(
        tiny_model, requests=PROMPT, sampling=GREEDY, plugins=["ref_probe_boom"],
        env={"PYTHONPATH": probe_plugin_site, "REF_PROBE_BOOM": "1"}, expect_failure=True,
    )
    assert "boom from the probe test plugin" in run.extra["error"]
    rec = run.report.assert_raised("ref_probe_boom", "RuntimeError: boom")
    assert rec.role == "front_end"


def test_async_llm_engine(vllm, tiny_model, probe_plugin_site) -> None:
    run = vllm.run(
        tiny_model, mode="async", requests=PROMPT * 3, sampling=GREEDY, plugins=["ref_probe_ok"],
        checks=CHECK, env={"PYTHONPATH": probe_plugin_site},
    )
    assert len({tuple(o["token_ids"]) for o in run.outputs}) == 1  # greedy: same prompt, same tokens
    run.report.assert_loaded("ref_probe_ok")


INNER_TEST = '''
import json, os, time
from vllm_ref_harness import procs

def test_serve_then_hang(vllm, tiny_model):
    server = vllm.serve(tiny_model, plugins=["ref_probe_ok"], checks={CHECK!r},
                        env={{"PYTHONPATH": {site!r}}})
    client = server.client()
    done = client.completions.create(model=server.model, prompt="Hello, my name is", max_tokens=5, temperature=0)
    chunks = list(client.completions.create(model=server.model, prompt="Hello, my name is", max_tokens=5,
                                            temperature=0, stream=True))
    streamed = "".join(c.choices[0].text for c in chunks)
    rep = server.wait_for_check("registered", ("front_end", "engine_core", "worker"))
    rep.assert_loaded("ref_probe_ok")
    rep.assert_check("registered", ["ok"])
    # Written aside and renamed: the outer test polls for the file and must never read it half-written.
    with open({marker!r} + ".tmp", "w") as f:
        json.dump({{"session": procs.SESSION_TAG, "sids": procs.sessions(procs.SESSION_TAG),
                    "text": done.choices[0].text, "streamed": streamed,
                    "alive": len(procs.tagged(procs.SESSION_TAG))}}, f)
    os.replace({marker!r} + ".tmp", {marker!r})
    time.sleep(600)  # the outer test interrupts us here
'''


def test_serve_and_an_interrupted_run_leaves_nothing(tmp_path: Path, probe_plugin_site: str) -> None:
    """`vllm serve` with the openai client inside a pytest run that is then killed by SIGTERM."""
    marker = tmp_path / "ready.json"
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(textwrap.dedent(INNER_TEST.format(CHECK=CHECK, site=probe_plugin_site,
                                                           marker=str(marker))))
    inner = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ),
    )
    deadline = time.monotonic() + 400
    while not marker.exists() and inner.poll() is None and time.monotonic() < deadline:
        time.sleep(1)
    if not marker.exists():
        inner.kill()
        pytest.fail(f"inner run never got ready:\n{inner.communicate()[0].decode()[-4000:]}")
    ready = json.loads(marker.read_text())
    assert ready["text"] and ready["text"] == ready["streamed"]
    assert ready["alive"] >= 3  # server (front end), engine core, worker
    inner.send_signal(signal.SIGTERM)
    out = inner.communicate(timeout=120)[0].decode()
    assert inner.returncode != 0, out[-2000:]
    survivors = procs.tagged(ready["session"], sids=ready["sids"])
    assert survivors == [], procs.describe(survivors)
