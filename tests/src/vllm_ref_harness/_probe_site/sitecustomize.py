"""The harness's process probe, loaded by every Python process the harness starts.

The harness puts this folder on PYTHONPATH and sets REF_PROBE_DIR, so every vLLM
process (front end, engine core, workers, the registry subprocess, Ray workers) runs this
at start-up without any change to vLLM or to the plugin under test. It records, as JSON
lines in REF_PROBE_DIR/<pid>.jsonl:
- which `vllm.*` entry points each process discovered, loaded and called, and what they
  returned or raised (by wrapping importlib.metadata, which every vLLM version uses);
- the values of the effect checks named in REF_PROBE_CHECKS, re-evaluated in a daemon
  thread while the process lives, so effects that appear late (a model built, a method
  patched) are seen too.
Nothing is recorded by processes that never touch vLLM.
"""

import os

if os.environ.get("REF_PROBE_DIR"):
    try:
        from vllm_ref_harness import _probe_runtime

        _probe_runtime.install()
    except Exception as exc:  # the probe must never break the process it observes
        import sys

        print(f"[vllm-ref-harness] probe not installed: {exc!r}", file=sys.stderr)
