"""vllm-ref-harness: boot a real vLLM with any plugin and prove where it loaded.

    from vllm_ref_harness import run_engine, tiny_llama

    run = run_engine(tiny_llama(), requests=[{"prompt": "Hello"}], plugins=["my_plugin"],
                     checks={"mine": "my_plugin:status"})
    run.report.assert_loaded("my_plugin")          # front end, engine core, every worker
    run.report.assert_check("mine", True)          # its status() says it took effect there

In pytest, the `vllm` and `vllm_module` fixtures (pytest11 entry point) do the same and tear
every boot down. The public surface is `__all__`; everything else is internal.
"""

from .plugin_site import entry_point_site
from .report import ALL_ROLES, ProbeError, ProbeReport, ProcessRecord
from .runner import EngineRun, HarnessError, VllmServer, free_port, metric_sum, pip_install_target, run_engine
from .tinymodel import cache_root, cached_checkpoint, tiny_llama, tiny_llama_embed, write_tokenizer, write_weights

__all__ = [
    "ALL_ROLES", "EngineRun", "HarnessError", "ProbeError", "ProbeReport", "ProcessRecord", "VllmServer",
    "cache_root", "cached_checkpoint", "entry_point_site", "free_port", "metric_sum", "pip_install_target",
    "run_engine", "tiny_llama", "tiny_llama_embed", "write_tokenizer", "write_weights",
]
