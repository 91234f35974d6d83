"""The plugin in a real vLLM: loaded, and in effect, in every process.

Runs against whichever vLLM is installed; `hatch run matrix.<release>:cell` runs it against one
release of the compatibility matrix (hatch.toml), and the harness records the result.
"""

import pytest

pytestmark = pytest.mark.vllm


def test_registered_once_in_every_process(vllm, tiny_model):
    run = vllm.run(tiny_model, requests=[{"prompt": "Hello, my name is"}], sampling={"max_tokens": 4},
                   plugins=["example_general_plugin"], checks={"status": "vllm_example_general_plugin:status"})
    assert run.outputs and run.outputs[0]["token_ids"], "the engine generated nothing"
    run.report.assert_loaded("example_general_plugin")  # front end, engine core, worker
    run.report.assert_check("status", {"effect": True, "registrations": 1})
