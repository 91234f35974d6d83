"""The harness's process probe, loaded by every Python process the harness starts.

The harness puts this folder on PYTHONPATH and sets REF_PROBE_DIR, so every vLLM
process (front end, engine core, workers, the registry subprocess, Ray workers) runs this
at start-up without any change to vLLM or to the plugin under test. What it records, and
when, is in _probe_runtime.py's docstring and docs/harness.md. Processes that never touch
vLLM record nothing.

The runtime is loaded from its file, not through `import vllm_ref_harness`, so a vLLM process
does not import the harness's runner, reports and their dependencies.
"""

import os

if os.environ.get("REF_PROBE_DIR"):
    try:
        import importlib.util
        import sys

        _path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_probe_runtime.py")
        _spec = importlib.util.spec_from_file_location("vllm_ref_harness_probe", _path)
        assert _spec is not None and _spec.loader is not None, _path
        _runtime = importlib.util.module_from_spec(_spec)
        sys.modules["vllm_ref_harness_probe"] = _runtime
        _spec.loader.exec_module(_runtime)
        _runtime.install()
    except Exception as exc:  # the probe must never break the process it observes
        import sys

        print(f"[vllm-ref-harness] probe not installed: {exc!r}", file=sys.stderr)
