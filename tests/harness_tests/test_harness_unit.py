"""Harness pieces that need no engine: report parsing, assertions, reaping, tiny models."""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from vllm_ref_harness import ProbeError, ProbeReport, procs, tinymodel


def _events(probe_dir: Path, pid: int, *events: dict) -> None:
    with open(probe_dir / f"{pid}.jsonl", "a") as f:
        for ev in events:
            f.write(json.dumps({"pid": pid, "ppid": 1, **ev}) + "\n")


@pytest.fixture
def report(tmp_path: Path) -> ProbeReport:
    g = "vllm.general_plugins"
    _events(tmp_path, 10, {"role": "front_end", "event": "discovered", "group": g, "names": ["a", "b"]},
            {"role": "front_end", "event": "loaded", "group": g, "name": "a"},
            {"role": "front_end", "event": "called", "group": g, "name": "a", "returned": None},
            {"role": "front_end", "event": "check", "label": "fx", "value": True})
    # A worker renamed after start: its first events say front_end, later ones worker[1].
    _events(tmp_path, 11, {"role": "front_end", "event": "discovered", "group": g, "names": ["a", "b"]},
            {"role": "worker", "rank": 1, "event": "loaded", "group": g, "name": "a"},
            {"role": "worker", "rank": 1, "event": "raised", "group": g, "name": "a", "error": "ValueError: x"},
            {"role": "front_end", "event": "check", "label": "fx", "value": False})
    (tmp_path / "12.jsonl").write_text('{"role": "engine_core", "event": "loaded", "group": "vllm.general_p')
    return ProbeReport.read(tmp_path)


def test_report_statuses_roles_and_ranks(report: ProbeReport) -> None:
    fe, wk = report.processes("front_end")[0], report.processes("worker")[0]
    assert (fe.status("a"), fe.status("b"), fe.status("zzz")) == ("called", "filtered", "absent")
    assert (wk.role, wk.rank, wk.status("a"), wk.errors["a"]) == ("worker", 1, "raised", "ValueError: x")
    assert report.processes("engine_core") == []  # the cut line is ignored, not a crash
    assert report.assert_raised("a", "ValueError").pid == 11


def test_failure_message_lists_every_process(report: ProbeReport) -> None:
    with pytest.raises(ProbeError) as e:
        report.assert_loaded("a", roles=("front_end", "worker"))
    msg = str(e.value)
    assert "worker[1] pid 11 (raised)" in msg and "front_end pid 10: plugins {a=called, b=filtered}" in msg
    with pytest.raises(ProbeError, match="no process with role 'engine_core'"):
        report.assert_loaded("a", roles=("engine_core",))
    with pytest.raises(ProbeError, match=r"check 'fx' failed .* worker\[1\] pid 11 = False"):
        report.assert_check("fx", True, roles=("front_end", "worker"))
    report.assert_not_loaded("b", roles=("front_end", "worker"))


def test_table_has_a_row_per_process_and_a_column_per_plugin(report: ProbeReport) -> None:
    lines = report.table(["a", "b"], checks={"a": "fx"}).splitlines()
    assert lines[0].split() == ["process", "pid", "a", "b"]
    assert lines[2].split() == ["front_end", "10", "loaded", "+", "effect", "filtered"]
    assert lines[3].split()[:3] == ["worker[1]", "11", "raised"]


def test_reap_kills_every_tagged_process_and_only_those() -> None:
    tag = procs.new_run_tag()
    env = {**os.environ, procs.TAG_VAR: tag}
    # A child with a grandchild of its own, like a front end with an engine core.
    code = ("import subprocess, sys, time; "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)")
    tagged_proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # Generous: on a 2-core machine busy with two engine boots, two interpreters can take seconds to start.
        deadline = time.monotonic() + 60
        while len(procs.tagged(tag)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(procs.tagged(tag)) == 2
        found = procs.reap(tag, grace=2)
        assert len(found) == 2
        assert procs.tagged(tag) == []
        assert other.poll() is None  # an untagged process is left alone
    finally:
        other.kill()
        tagged_proc.wait(5)
        other.wait(5)


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def test_tiny_model_is_deterministic_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REF_HARNESS_CACHE", str(tmp_path / "one"))
    a = tinymodel.tiny_llama(num_layers=1, vocab_size=300)
    assert tinymodel.tiny_llama(num_layers=1, vocab_size=300) == a  # cached, not rebuilt
    monkeypatch.setenv("REF_HARNESS_CACHE", str(tmp_path / "two"))
    b = tinymodel.tiny_llama(num_layers=1, vocab_size=300)
    assert a != b and _digest(a) == _digest(b)
    config = json.loads((a / "config.json").read_text())
    assert config["hidden_size"] // config["num_attention_heads"] == 64  # a CPU-attention head size
    assert "chat_template" in json.loads((a / "tokenizer_config.json").read_text())


def test_tiny_pooling_model_is_deterministic_and_headless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors import safe_open

    monkeypatch.setenv("REF_HARNESS_CACHE", str(tmp_path / "one"))
    a = tinymodel.tiny_llama_embed(num_layers=1)
    monkeypatch.setenv("REF_HARNESS_CACHE", str(tmp_path / "two"))
    assert _digest(tinymodel.tiny_llama_embed(num_layers=1)) == _digest(a)
    config = json.loads((a / "config.json").read_text())
    assert config["architectures"] == ["LlamaModel"] and config["max_position_embeddings"] == 512
    with safe_open(str(a / "model.safetensors"), "pt") as f:
        names = set(f.keys())
    # vLLM's loader wants the `model.` prefix; a pooling model has no LM head.
    assert "model.embed_tokens.weight" in names and not any(n.startswith("lm_head") for n in names)


def test_exclusive_tests_never_overlap_under_xdist(tmp_path: Path) -> None:
    # Two files on two workers, each with exclusive tests: no two of those may overlap.
    log = tmp_path / "log.txt"
    body = ("import time, pytest\n"
            "def mark(name):\n"
            f"    open({str(log)!r}, 'a').write(f'{{name}} {{time.monotonic()}}\\n'); time.sleep(0.4)\n"
            f"    open({str(log)!r}, 'a').write(f'{{name}} {{time.monotonic()}}\\n')\n"
            "@pytest.mark.exclusive\n@pytest.mark.parametrize('i', range(3))\n")
    (tmp_path / "test_one.py").write_text(body + "def test_one(i):\n    mark(f'a{i}')\n")
    (tmp_path / "test_two.py").write_text(body + "def test_two(i):\n    mark(f'b{i}')\n")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadfile", "-p",
                        "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    spans: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        name, t = line.split()
        spans.setdefault(name, []).append(float(t))
    assert len(spans) == 6
    ordered = sorted(spans.values())
    overlaps = [(a, b) for a, b in zip(ordered, ordered[1:], strict=False) if b[0] < a[1]]
    assert not overlaps, f"exclusive tests overlapped: {spans}"


def test_record_figures_merges_and_keeps_other_benchmarks_entries(tmp_path: Path) -> None:
    from vllm_ref_harness.bench import machine, record_figures

    path = tmp_path / "bench" / "figures.json"
    record_figures(path, {"a": {"median": 1.0}, "b": {"median": 2.0}})
    record_figures(path, {"b": {"median": 3.0}})
    assert json.loads(path.read_text()) == {"a": {"median": 1.0}, "b": {"median": 3.0}}
    assert "cores (load average at the end" in machine()
