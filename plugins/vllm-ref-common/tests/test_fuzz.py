"""The settings every plugin reads through vllm_ref_common under hostile text (hypothesis): the
on/off flags (REF_ENDPOINT_WRITE, REF_MODEL_DISABLE, REF_ACCELERATOR, REF_*_ANY_VERSION,
REF_TEMPERATURE_COMPILE) and REF_PATCHES. Each gives its documented answer for any text, and
never raises: a plugin reports a value it does not understand with the setting's name."""

from __future__ import annotations

from hypothesis import given
from vllm_ref_common import FALSE_VALUES, TRUE_VALUES, env_flag
from vllm_ref_common.patching import ENV_SELECT, selection
from vllm_ref_harness.hostile import FUZZ, hostile_text, number_texts


@FUZZ
@given(hostile_text(100))
def test_any_flag_text_is_on_off_or_not_understood(text):
    got = env_flag("REF_X", {"REF_X": text})
    spelled = text.strip().lower()
    assert got is (True if spelled in TRUE_VALUES else False if spelled in FALSE_VALUES else None)


@FUZZ
@given(hostile_text(100) | number_texts())
def test_any_patch_selection_is_all_or_a_set_of_names(text):
    got = selection({ENV_SELECT: text})
    if got is None:
        assert text.strip() == "*"
    else:
        assert all(name and name == name.strip() and "," not in name for name in got)
