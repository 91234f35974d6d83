"""The store and the connector's settings under hostile and random input (hypothesis, bounded).

- Any kv_connector_extra_config is (folder, a cap in bounds) or a ConfigError naming the plugin.
- Any token ids and payload round-trip; any single corrupted byte of a block file gives the
  original payload or a miss, never other bytes; keys of a prefix are the prefix's keys."""

from __future__ import annotations

import tempfile

from hypothesis import given
from hypothesis import strategies as st
from vllm_ref_harness.hostile import FUZZ, hostile_text, hostile_values, number_texts, numbers
from vllm_ref_kv import EXTRA_KEYS, ConfigError, parse_extra_config
from vllm_ref_kv import store as S

EXTRA = st.one_of(
    st.fixed_dictionaries({"folder": st.one_of(st.just("/tmp/ref-kv"), hostile_text(50), hostile_values())},
                          optional={"max_bytes": st.one_of(numbers(), number_texts(), hostile_values(),
                                                           st.sampled_from(["1G", "512m", "3 KiB", "0G"]))}),
    st.dictionaries(st.one_of(st.sampled_from(EXTRA_KEYS), hostile_text(20)), hostile_values(), max_size=3),
    hostile_values(),
)


@FUZZ
@given(EXTRA)
def test_any_extra_config_is_a_setting_or_an_error_naming_the_plugin(extra):
    try:
        folder, cap, fsync = parse_extra_config(extra)
    except ConfigError as exc:
        msg = str(exc)
        assert msg.startswith("ref_kv: ") and ("accepted" in msg or "must be" in msg) and len(msg) < 1000, msg
        return
    assert isinstance(folder, str) and folder.strip() and 1 <= cap <= 2**62 and isinstance(fsync, bool)


TOKENS = st.lists(st.integers(0, 2**31 - 1), max_size=200)


@FUZZ
@given(TOKENS, st.integers(0, 199), st.sampled_from([1, 16, 32]))
def test_the_keys_of_a_prefix_are_the_leading_keys(tokens, cut, block):
    full = S.chain_keys("ns", tokens, block)
    assert len(full) == len(tokens) // block
    assert S.chain_keys("ns", tokens[:cut], block) == full[:min(cut, len(tokens)) // block]


_DIR = tempfile.TemporaryDirectory(prefix="ref-kv-fuzz-")
_STORE = S.Store(_DIR.name, max_bytes=1 << 30)
LAYOUT = [["layer", [2, 3], "torch.float16"]]


@FUZZ
@given(TOKENS.filter(lambda t: len(t) >= 16), st.binary(max_size=3000), st.data())
def test_a_corrupted_byte_gives_the_block_or_a_miss_never_other_bytes(tokens, payload, data):
    key = S.chain_keys("ns", tokens, 16)[-1]
    path = _STORE.path(key, "p")
    path.unlink(missing_ok=True)
    assert _STORE.save(key, "p", LAYOUT, payload)
    assert bytes(_STORE.load(key, "p", LAYOUT)) == payload
    raw = bytearray(path.read_bytes())
    at = data.draw(st.integers(0, len(raw) - 1))
    raw[at] ^= data.draw(st.integers(1, 255))
    if data.draw(st.booleans()):
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    path.write_bytes(bytes(raw))
    got = _STORE.load(key, "p", LAYOUT)
    assert got is None or bytes(got) == payload
