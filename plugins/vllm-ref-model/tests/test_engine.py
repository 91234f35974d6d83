"""Real vLLM engines serving Parallax, checked against the plain PyTorch reference.

Boots (about 30-150 s each on a busy 2-core machine):
1. `vllm serve` at TP=1 with a fresh model-info cache: registration in every process including
   the registry-inspection subprocess, completions/chat/streaming, tokens and logprobs.
2. offline `LLM` at TP=2 with the safetensors checkpoint: tokens and logprobs.
3. and 4. boots that must fail at load: a checkpoint missing a tensor, a head size the
   attention backend lacks (these stop during model construction, so they are short).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file
from vllm_ref_harness import ALL_ROLES
from vllm_ref_model.reference import ParallaxReference
from vllm_ref_model.testing import tiny_parallax, write_parallax

pytestmark = pytest.mark.vllm

CHECKS = {"status": "vllm_ref_model:status"}
# float32 on both sides; the observed gap is about 1e-5, the bound leaves room for other
# CPUs' kernels and TP's different summation order.
LOGPROB_ATOL = 2e-3
TOP_K = 5


@pytest.fixture(scope="session")
def parallax() -> Path:
    return tiny_parallax()


@pytest.fixture(scope="session")
def reference(parallax: Path) -> ParallaxReference:
    return ParallaxReference.from_pretrained(parallax)


def assert_matches_reference(
    ref: ParallaxReference, prompt_ids: list[int], tokens: list[int], logprobs: list[dict[int, float]],
) -> None:
    """vLLM's greedy tokens equal the reference's; its top-k logprobs agree within LOGPROB_ATOL."""
    want, steps = ref.greedy(prompt_ids, len(tokens), top_k=TOP_K + 5)
    assert tokens == want, f"prompt {prompt_ids}: vLLM {tokens} != reference {want}"
    assert len(logprobs) == len(tokens)
    for i, (got, ref_top) in enumerate(zip(logprobs, steps, strict=True)):
        for tok, lp in got.items():
            assert tok in ref_top, f"step {i}: vLLM's token {tok} is not in the reference's top-k"
            assert abs(lp - ref_top[tok]) <= LOGPROB_ATOL, f"step {i} token {tok}: {lp} vs {ref_top[tok]}"
        ranked = sorted(ref_top.values(), reverse=True)
        if ranked[TOP_K - 1] - ranked[TOP_K] > LOGPROB_ATOL:  # no near-tie at the cut
            assert set(got) == set(sorted(ref_top, key=ref_top.get, reverse=True)[:TOP_K]), f"step {i}"

# Several prompts and lengths, long enough to cross a KV block (16 tokens) on both sides.
TOKEN_PROMPTS = [([0, 50, 60, 70], 12), ([0, *range(100, 140)], 24), ([0, 7], 5)]
TEXT_PROMPTS = [("The capital of France is", 16), ("def greet(name):", 9)]


def _ids(tokens: list[str]) -> list[int]:
    """The server's "token_id:N" strings (return_tokens_as_token_ids) as integers."""
    return [int(t.removeprefix("token_id:")) for t in tokens]


# ---------------------------------------------------------------- 1. vllm serve, TP=1

@pytest.fixture(scope="module")
def server(vllm_module, parallax):
    return vllm_module.serve(parallax, args=["--dtype", "float32"], plugins=["ref_model"], checks=CHECKS,
                             fresh_cache=True, timeout=600)


def test_registered_in_every_process_including_registry_subprocess(server):
    report = server.wait_for_check("status", ALL_ROLES)
    report.assert_loaded("ref_model", roles=(*ALL_ROLES, "registry"))
    report.assert_check("status", lambda s: s["effect"] and s["config"] and s["gate"]["active"], roles=ALL_ROLES)
    assert "registered architecture ParallaxForCausalLM" in server.log


def test_completions_match_reference(server, parallax, reference):
    client = server.client()
    for prompt, n in TOKEN_PROMPTS:
        out = client.completions.create(
            model=str(parallax), prompt=prompt, max_tokens=n, temperature=0, logprobs=TOP_K,
            extra_body={"return_tokens_as_token_ids": True, "ignore_eos": True})
        lp = out.choices[0].logprobs
        steps = [{int(k.removeprefix("token_id:")): v for k, v in top.items()} for top in lp.top_logprobs]
        assert_matches_reference(reference, prompt, _ids(lp.tokens), steps)


def test_chat_uses_the_shipped_template(server, parallax, reference):
    # The fast tokenizer class directly: AutoTokenizer would look up model_type "parallax"
    # in this (plugin-less) test process first.
    from transformers import PreTrainedTokenizerFast

    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    out = server.client().chat.completions.create(
        model=str(parallax), messages=messages, max_tokens=8, temperature=0, logprobs=True,
        extra_body={"return_tokens_as_token_ids": True, "ignore_eos": True})
    tok = PreTrainedTokenizerFast.from_pretrained(str(parallax))
    rendered = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == "<s><|system|>Be brief.<|end|><|user|>Hello<|end|><|assistant|>"
    prompt_ids = tok(rendered, add_special_tokens=False)["input_ids"]
    assert out.usage.prompt_tokens == len(prompt_ids)
    got = _ids([c.token for c in out.choices[0].logprobs.content])
    want, _ = reference.greedy(prompt_ids, 8)
    assert got == want
    # vLLM's detokenizer holds back a trailing incomplete UTF-8 sequence (random weights produce
    # any byte); tokenizers renders it as U+FFFD instead.
    assert out.choices[0].message.content == tok.decode(want, skip_special_tokens=True).rstrip("\ufffd")


def test_streaming_gives_the_same_text(server, parallax):
    client = server.client()
    kw = dict(model=str(parallax), max_tokens=10, temperature=0, extra_body={"ignore_eos": True})
    whole = client.completions.create(prompt="Hello, how", **kw).choices[0].text
    chunks = [c.choices[0].text for c in client.completions.create(prompt="Hello, how", stream=True, **kw)]
    assert len(chunks) > 1 and "".join(chunks) == whole and whole

    messages = [{"role": "user", "content": "Hi"}]
    whole = client.chat.completions.create(messages=messages, **kw).choices[0].message.content
    deltas = [c.choices[0].delta.content or "" for c in
              client.chat.completions.create(messages=messages, stream=True, **kw) if c.choices]
    assert len(deltas) > 1 and "".join(deltas) == whole and whole


# ---------------------------------------------------------------- 2. offline LLM, TP=2

def test_tensor_parallel_2_matches_reference(vllm, parallax, reference):
    requests = [{"prompt_token_ids": p, "sampling": {"max_tokens": n}} for p, n in TOKEN_PROMPTS]
    requests += [{"prompt": p, "sampling": {"max_tokens": n}} for p, n in TEXT_PROMPTS]
    run = vllm.run(parallax, engine_args={"dtype": "float32", "tensor_parallel_size": 2},
                   requests=requests, sampling={"temperature": 0, "logprobs": TOP_K, "ignore_eos": True},
                   plugins=["ref_model"], checks=CHECKS, timeout=600)
    assert len(run.outputs) == len(requests)
    for out, req in zip(run.outputs, requests, strict=True):
        assert len(out["token_ids"]) == req["sampling"]["max_tokens"]
        steps = [{int(k): v for k, v in s.items()} for s in out["logprobs"]]
        assert_matches_reference(reference, out["prompt_token_ids"], out["token_ids"], steps)
    workers = run.report.processes("worker")
    assert sorted(w.rank for w in workers) == [0, 1]
    run.report.assert_loaded("ref_model", roles=ALL_ROLES)
    run.report.assert_check("status", True, roles=ALL_ROLES)


# ---------------------------------------------------------------- 3./4. failures at load

def _missing_tensor(tmp_path, parallax):
    bad = tmp_path / "bad-ckpt"
    shutil.copytree(parallax, bad)
    tensors = load_file(str(bad / "model.safetensors"))
    del tensors["model.layers.1.self_attn.k_norm.weight"]
    save_file(tensors, str(bad / "model.safetensors"), metadata={"format": "pt"})
    return bad, {}, ["ref_model: the checkpoint is missing tensor(s)",
                     "model.layers.1.self_attn.k_norm.weight"]


def _head_size_16(tmp_path, parallax):
    bad = write_parallax(tmp_path / "head16", hidden_size=64, num_heads=4, num_kv_heads=2)
    assert json.loads((bad / "config.json").read_text())["head_dim"] == 16
    return bad, {"load_format": "dummy"}, ["head_dim=16", "accepted: [", "64", "attention backend"]


@pytest.mark.parametrize("make_bad", [_missing_tensor, _head_size_16], ids=["missing-tensor", "head-size"])
def test_unrunnable_checkpoint_fails_at_load_with_a_clear_error(vllm, tmp_path, parallax, make_bad):
    path, extra_args, words = make_bad(tmp_path, parallax)
    run = vllm.run(path, engine_args={"dtype": "float32", **extra_args}, plugins=["ref_model"],
                   requests=[{"prompt_token_ids": [0, 5]}], timeout=600, expect_failure=True)
    assert run.outputs == [] and run.extra["error"]
    for w in words:
        assert w in run.log, f"{w!r} not in the log:\n{run.log[-3000:]}"
