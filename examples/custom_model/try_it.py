"""Generate with ToyLM through vLLM: python try_it.py CHECKPOINT_DIR

No import of vllm_example_custom_model here: vLLM finds the plugin through its entry point, in every process.
"""

import sys

from vllm import LLM, SamplingParams

if __name__ == "__main__":  # vLLM's CPU backend spawns processes: the guard is required
    # kv_cache_memory_bytes: a 1 GiB KV cache. Without it vLLM's CPU build reserves
    # gpu_memory_utilization (0.92) of the host's memory and refuses to start where that much is
    # not free; on a GPU the setting only caps the cache.
    llm = LLM(model=sys.argv[1], enforce_eager=True, max_model_len=512, kv_cache_memory_bytes=1 << 30)
    out = llm.generate(["The capital of France is"], SamplingParams(max_tokens=16, temperature=0))
    print("ToyLM says:", repr(out[0].outputs[0].text))
    chat = llm.chat([{"role": "user", "content": "Hello"}], SamplingParams(max_tokens=8, temperature=0))
    print("ToyLM chat:", repr(chat[0].outputs[0].text))
