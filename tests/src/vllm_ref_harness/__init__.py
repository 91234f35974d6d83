"""vllm-ref-harness: boot a real vLLM with any plugin and prove where it loaded.

    from vllm_ref_harness import run_engine, VllmServer, tiny_llama

    run = run_engine(tiny_llama(), requests=[{"prompt": "Hello"}], plugins=["my_plugin"])
    run.report.assert_loaded("my_plugin")          # front end, engine core, every worker
"""

from .report import ALL_ROLES, ProbeError, ProbeReport, ProcessRecord
from .runner import EngineRun, HarnessError, VllmServer, free_port, pip_install_target, run_engine, vllm_env
from .tinymodel import cache_root, tiny_llama, write_tokenizer

__all__ = [
    "ALL_ROLES", "EngineRun", "HarnessError", "ProbeError", "ProbeReport", "ProcessRecord",
    "VllmServer", "cache_root", "free_port", "pip_install_target", "run_engine", "tiny_llama", "vllm_env",
    "write_tokenizer",
]
