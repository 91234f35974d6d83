#!/usr/bin/env bash
# Vendored from ../shared/anchors/make_vllm_shim.sh (keep the two in step): the project builds the
# shim itself (`make kernels-gpu-prep`), since ../shared is not on every machine that runs it.
# Builds .anchors/shim: vLLM's own Triton unified-attention kernel with the few vLLM
# modules it imports replaced by stubs, so it can be timed on a GPU machine without vLLM.
# The kernel files are copied from an installed vLLM at run time and never committed.
set -euo pipefail
src=${1:?path to an installed vllm package}
dst=.anchors/shim/vllm
rm -rf .anchors/shim && mkdir -p $dst/platforms $dst/triton_utils $dst/v1/attention/ops
touch $dst/__init__.py $dst/v1/__init__.py $dst/v1/attention/__init__.py $dst/v1/attention/ops/__init__.py
cp "$src"/v1/attention/ops/triton_unified_attention.py "$src"/v1/attention/ops/triton_attention_helpers.py $dst/v1/attention/ops/
echo 'VLLM_BATCH_INVARIANT = False' > $dst/envs.py
echo 'import logging; init_logger = logging.getLogger' > $dst/logger.py
echo 'import triton, triton.language as tl' > $dst/triton_utils/__init__.py
cat > $dst/platforms/__init__.py <<'PY'
import torch
class _P:
    def fp8_dtype(self): return torch.float8_e4m3fn
    def is_device_capability_family(self, *a): return False
    def is_device_capability(self, *a): return False
    def is_cuda(self): return True
    def is_rocm(self): return False
current_platform = _P()
PY
cp "$src"/v1/kv_cache_interface.py /dev/null
cat > $dst/v1/kv_cache_interface.py <<'PY'
from enum import IntEnum
class KVQuantMode(IntEnum):
    NONE = 0
    FP8_PER_TENSOR = 1
    INT8_PER_TOKEN_HEAD = 2
    FP8_PER_TOKEN_HEAD = 3
    INT4_PER_TOKEN_HEAD = 4
    NVFP4 = 5
PY
echo "shim ready"
