"""Unit tests: no engine boots. vLLM is imported (registry, config parser) but not started."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
import torch
import vllm_ref_common
import vllm_ref_model
from safetensors.torch import load_file, save_file
from vllm_ref_harness.tinymodel import CHAT_TEMPLATE
from vllm_ref_model.layout import CheckpointError, CheckpointValidator, tensor_shapes
from vllm_ref_model.reference import ParallaxReference
from vllm_ref_model.testing import tiny_parallax, write_parallax

ARCH = vllm_ref_model.ARCHITECTURE


@pytest.fixture
def registry(monkeypatch):
    """vLLM's global ModelRegistry with the Parallax entry removed again after the test."""
    from vllm import ModelRegistry

    monkeypatch.delitem(ModelRegistry.models, ARCH, raising=False)
    monkeypatch.setattr(vllm_ref_common.gate, "_warned", set())
    monkeypatch.delenv(vllm_ref_model.DISABLE_ENV, raising=False)
    monkeypatch.delenv(vllm_ref_model.ANY_VERSION_ENV, raising=False)
    yield ModelRegistry
    ModelRegistry.models.pop(ARCH, None)


@pytest.fixture(scope="module")
def ckpt() -> Path:
    return tiny_parallax()


def _messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_register_is_lazy_reentrant_and_logged(registry, caplog):
    with caplog.at_level(logging.INFO, logger="vllm_ref.model"):
        vllm_ref_model.register()
        vllm_ref_model.register()
    entry = registry.models[ARCH]
    # Lazy: registered by "module:Class" name; the model module is not imported by registering.
    assert (entry.module_name, entry.class_name) == ("vllm_ref_model.model", ARCH)
    assert vllm_ref_model.status()["effect"]
    said = [m for m in _messages(caplog) if "registered architecture" in m]
    assert len(said) == 1 and ARCH in said[0] and "vllm_ref_model.model:" in said[0] and "parallax" in said[0]


def test_disable_env_registers_nothing(registry, monkeypatch, caplog):
    monkeypatch.setenv(vllm_ref_model.DISABLE_ENV, "1")
    with caplog.at_level(logging.WARNING):
        vllm_ref_model.register()
    assert ARCH not in registry.models
    assert any(vllm_ref_model.DISABLE_ENV in m for m in _messages(caplog))


def test_outside_supported_range_registers_nothing(registry, monkeypatch, caplog):
    import vllm

    monkeypatch.setattr(vllm, "__version__", "0.99.0")
    with caplog.at_level(logging.WARNING):
        vllm_ref_model.register()
    assert ARCH not in registry.models
    assert any("0.99.0" in m and vllm_ref_model.SUPPORTED_VLLM in m for m in _messages(caplog))
    monkeypatch.setenv(vllm_ref_model.ANY_VERSION_ENV, "1")
    vllm_ref_model.register()
    assert vllm_ref_model.status()["effect"]


def test_without_vllm_logs_one_warning_and_does_nothing(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    monkeypatch.setattr(vllm_ref_common.gate, "_warned", set())
    monkeypatch.delenv(vllm_ref_model.DISABLE_ENV, raising=False)
    with caplog.at_level(logging.WARNING):
        vllm_ref_model.register()
        vllm_ref_model.register()
    msgs = [m for m in _messages(caplog) if "ref_model" in m]
    assert len(msgs) == 1 and "not importable" in msgs[0]


def test_someone_elses_registration_is_kept(registry, caplog):
    registry.register_model(ARCH, "somebody.else:ParallaxForCausalLM")
    with caplog.at_level(logging.WARNING):
        vllm_ref_model.register()
    assert registry.models[ARCH].module_name == "somebody.else"
    assert not vllm_ref_model.status()["effect"]
    assert any("already registered" in m for m in _messages(caplog))


def test_vllm_parses_the_config_without_trust_remote_code(registry, ckpt):
    from vllm.transformers_utils.config import get_config

    vllm_ref_model.register()
    config = get_config(str(ckpt), trust_remote_code=False)
    assert type(config).__name__ == "ParallaxConfig"
    assert (config.model_type, config.architectures) == ("parallax", [ARCH])
    assert (config.head_dim, config.num_key_value_heads) == (64, 1)


def test_checkpoint_is_deterministic_and_complete(tmp_path, ckpt):
    a = write_parallax(tmp_path / "a", seed=0)
    b = write_parallax(tmp_path / "b", seed=0)
    c = write_parallax(tmp_path / "c", seed=1)
    for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (a / f).read_bytes() == (b / f).read_bytes() == (ckpt / f).read_bytes(), f
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()
    config = json.loads((a / "config.json").read_text())
    shapes = {k: tuple(v.shape) for k, v in load_file(str(a / "model.safetensors")).items()}
    assert shapes == tensor_shapes(config)
    assert "model.layers.1.self_attn.q_norm.weight" in shapes
    assert "model.layers.0.post_attention_layernorm.weight" not in shapes  # one norm per layer


def test_chat_template_ships_and_renders(ckpt):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(ckpt))
    assert tok.chat_template == CHAT_TEMPLATE
    text = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                   add_generation_prompt=True)
    assert text == "<s><|user|>Hi<|end|><|assistant|>"
    assert tok.eos_token_id == json.loads((ckpt / "config.json").read_text())["eos_token_id"]


def test_tied_checkpoint_has_no_lm_head_and_runs(tmp_path):
    path = write_parallax(tmp_path / "tied", tie_word_embeddings=True)
    assert "lm_head.weight" not in load_file(str(path / "model.safetensors"))
    ref = ParallaxReference.from_pretrained(path)
    tokens, _ = ref.greedy([0, 5, 6], 4)
    assert len(tokens) == 4 and all(0 <= t < ref.d["vocab"] for t in tokens)


def test_reference_is_causal_and_position_aware(ckpt):
    ref = ParallaxReference.from_pretrained(ckpt)
    ids = torch.tensor([0, 40, 41, 42, 43])
    full = ref(ids)
    # Causal: a prefix's logits do not depend on what follows it.
    torch.testing.assert_close(ref(ids[:3]), full[:3], rtol=1e-5, atol=1e-5)
    # Rotary: the same token at another position gives other logits.
    assert not torch.allclose(ref(torch.tensor([0, 40, 40]))[2], ref(torch.tensor([0, 40, 40, 40]))[3])


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        ("drop", ["missing", "model.layers.1.self_attn.k_norm.weight"]),
        ("extra", ["unexpected", "model.layers.0.mlp.extra.weight"]),
        ("reshape", ["model.layers.0.self_attn.v_proj.weight", "[64, 128]", "[32, 128]"]),
    ],
)
def test_bad_checkpoints_name_the_tensor(tmp_path, ckpt, edit, words):
    tensors = load_file(str(ckpt / "model.safetensors"))
    if edit == "drop":
        del tensors["model.layers.1.self_attn.k_norm.weight"]
    elif edit == "extra":
        tensors["model.layers.0.mlp.extra.weight"] = torch.zeros(3)
    else:
        tensors["model.layers.0.self_attn.v_proj.weight"] = torch.zeros(32, 128)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((ckpt / "config.json").read_text())
    save_file(tensors, str(bad / "model.safetensors"))
    with pytest.raises(CheckpointError) as err:
        ParallaxReference.from_pretrained(bad)
    for w in words:
        assert w in str(err.value)
    assert "ref_model" in str(err.value)


def test_tied_checkpoint_may_carry_lm_head():
    config = {"hidden_size": 128, "num_attention_heads": 2, "intermediate_size": 256,
              "num_hidden_layers": 1, "vocab_size": 10, "tie_word_embeddings": True}
    v = CheckpointValidator(config)
    assert v.accept("lm_head.weight", (10, 128)) is False  # skipped, not an error
    with pytest.raises(CheckpointError, match="missing"):
        v.finish()


def _fake_vllm_module(config: dict) -> torch.nn.Module:
    """An nn.Module with vLLM's parameter names whose loaders record (name, hf shape, shard)."""
    calls = []
    mod = torch.nn.Module()
    names = set()
    for hf in tensor_shapes(config):
        for piece, fused in ((".q_proj.", ".qkv_proj."), (".k_proj.", ".qkv_proj."),
                             (".v_proj.", ".qkv_proj."), (".gate_proj.", ".gate_up_proj."),
                             (".up_proj.", ".gate_up_proj.")):
            hf = hf.replace(piece, fused)
        names.add(hf)
    params = {}
    for name in sorted(names):
        p = torch.nn.Parameter(torch.zeros(1), requires_grad=False)

        def loader(param, tensor, shard=None, _name=name):
            calls.append((_name, tuple(tensor.shape), shard))

        p.weight_loader = loader
        params[name] = p
    mod.named_parameters = lambda: iter(params.items())
    mod.config = type("C", (), config)
    mod.calls = calls
    return mod


def test_load_weights_maps_fused_shards_and_rejects_bad_tensors(ckpt):
    from vllm_ref_model.model import ParallaxForCausalLM

    config = json.loads((ckpt / "config.json").read_text())
    weights = load_file(str(ckpt / "model.safetensors"))
    fake = _fake_vllm_module(config)
    loaded = ParallaxForCausalLM.load_weights(fake, iter(weights.items()))
    calls = {(n, s) for n, _, s in fake.calls}
    p = "model.layers.0."
    assert {(p + "self_attn.qkv_proj.weight", s) for s in "qkv"} <= calls
    assert {(p + "mlp.gate_up_proj.weight", 0), (p + "mlp.gate_up_proj.weight", 1)} <= calls
    assert (p + "self_attn.q_norm.weight", None) in calls
    assert len(fake.calls) == len(weights)
    assert p + "self_attn.qkv_proj.weight" in loaded and "lm_head.weight" in loaded

    short = dict(weights)
    del short["model.norm.weight"]
    with pytest.raises(CheckpointError, match=r"missing.*model\.norm\.weight"):
        ParallaxForCausalLM.load_weights(_fake_vllm_module(config), iter(short.items()))
    wrong = dict(weights, **{"lm_head.weight": torch.zeros(7, 128)})
    with pytest.raises(CheckpointError, match=r"'lm_head\.weight' has shape \[7, 128\]"):
        ParallaxForCausalLM.load_weights(_fake_vllm_module(config), iter(wrong.items()))
