#!/usr/bin/env bash
# Everything a GPU session checks, in one device call, from the repository root:
#   1. correctness in fp16, bf16 and fp32 against the fp64 reference (kernels/bench/gpu_check.py),
#   2. the benchmark beside torch SDPA and vLLM's Triton kernel, with the launch-option sweep,
#   3. a compute-sanitizer memcheck pass over small cases, when the tool works on that machine.
# Before the call, on the CPU machine (vLLM's kernel, copied out of the installed vLLM):
#   bash ../shared/anchors/make_vllm_shim.sh .venv/lib/python3.11/site-packages/vllm
# The call: run(command="bash kernels/bench/gpu_run.sh", carry=[".anchors"], timeout_s=540)
# Results: $OUT/check.json, $OUT/bench.json, $OUT/log.txt (the last lines are the summary).
set -uo pipefail
out=${OUT:-/tmp/vllm-ref-kernels}
mkdir -p "$out"
export PYTHONPATH=".anchors/shim:kernels/src${PYTHONPATH:+:$PYTHONPATH}"
[ -d .anchors/shim ] || echo "WARNING: .anchors/shim missing: no vLLM column (build it first, see above)"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw \
  --format=csv 2>&1 | tee "$out/gpu.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$out/gpu.txt"

timeout 420 python3 kernels/bench/gpu_check.py --sweep --out "$out" 2>&1 | tee "$out/log.txt"
rc=${PIPESTATUS[0]}

if command -v compute-sanitizer >/dev/null 2>&1; then
  timeout 90 compute-sanitizer --tool memcheck --error-exitcode 9 \
    python3 kernels/bench/gpu_check.py --tiny --no-bench >"$out/memcheck.txt" 2>&1
  echo "memcheck exit code $? (0 clean, 9 errors found, 124 timed out; see memcheck.txt)" | tee -a "$out/log.txt"
fi
# The summary again, last, so that the reply's output tail shows it.
grep -E "^(== |goal |FAILED|prefill|decode|mixed)" "$out/log.txt" | tail -40
exit "$rc"
