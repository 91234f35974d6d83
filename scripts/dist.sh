#!/usr/bin/env bash
# Wheels and sdists of every package (tests/ = vllm-ref-harness, kernels/, plugins/*) into one
# folder (default dist/), built with hatch, so that
#   pip install --find-links dist vllm-ref-<x>
# installs one plugin with exactly its own dependencies (the in-repo ones come from the same
# folder, the others from the index). The folder is emptied first: no stale version lingers.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-dist}")
hatch=${HATCH:-${VENV:-.venv}/bin/hatch}
hatch=$(realpath "$hatch")
rm -rf "$out"
mkdir -p "$out"
for d in tests kernels plugins/*/; do
  d=${d%/}
  [ -f "$d/pyproject.toml" ] || continue
  log=$(cd "$d" && "$hatch" build "$out" 2>&1) || { echo "$log" >&2; echo "dist: hatch build failed in $d" >&2; exit 1; }
done
echo "dist: $(ls "$out" | wc -l) files in $out"
