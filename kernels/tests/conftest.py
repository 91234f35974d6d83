"""Run the Triton kernels on Triton's CPU interpreter when there is no GPU.

triton.jit picks the interpreter when a kernel is *defined* (module import) with
TRITON_INTERPRET=1, so the variable is set only around that import and then restored: pytest runs
every package's tests in one process, and the vLLM engines other packages boot must not inherit it.
The `interpret` fixture sets it again during each kernels test, where `implementation()` reads it.
"""

from __future__ import annotations

import importlib
import os
import sys

import pytest
import torch

ON_GPU = torch.cuda.is_available()


def _import_interpreted() -> None:
    previous = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        from triton.runtime.interpreter import InterpretedFunction

        mod = sys.modules.get("vllm_ref_kernels.triton_ops")
        if mod is None:
            importlib.import_module("vllm_ref_kernels.triton_ops")
        elif not isinstance(mod._decode_kernel, InterpretedFunction):
            importlib.reload(mod)  # imported earlier without the interpreter
    finally:
        if previous is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = previous


if not ON_GPU:
    _import_interpreted()


@pytest.fixture(autouse=True)
def interpret(monkeypatch: pytest.MonkeyPatch) -> None:
    if not ON_GPU:
        monkeypatch.setenv("TRITON_INTERPRET", "1")


@pytest.fixture
def device() -> str:
    return "cuda" if ON_GPU else "cpu"
