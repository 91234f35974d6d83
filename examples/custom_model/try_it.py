"""Generate with ToyLM through vLLM: python try_it.py CHECKPOINT_DIR

No import of vllm_example_custom_model here: vLLM finds the plugin through its entry point, in every process.
"""

import sys

from vllm import LLM, SamplingParams

if __name__ == "__main__":  # vLLM's CPU backend spawns processes: the guard is required
    llm = LLM(model=sys.argv[1], enforce_eager=True, max_model_len=512)
    out = llm.generate(["The capital of France is"], SamplingParams(max_tokens=16, temperature=0))
    print("ToyLM says:", repr(out[0].outputs[0].text))
    chat = llm.chat([{"role": "user", "content": "Hello"}], SamplingParams(max_tokens=8, temperature=0))
    print("ToyLM chat:", repr(chat[0].outputs[0].text))
