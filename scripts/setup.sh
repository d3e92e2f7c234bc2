#!/usr/bin/env bash
# Set up sleeve on a fresh machine: a virtual environment in .venv with every pinned dependency, the MLflow
# tracking server in .venv-tracking, plus Debian's Chromium and PostgreSQL for the tests when apt-get is
# available to root.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
"$PYTHON" - <<'PY'
import sys
if sys.version_info[:2] != (3, 11):
    sys.exit(f"sleeve needs Python 3.11 (found {sys.version.split()[0]}); set PYTHON=/path/to/python3.11")
PY

"$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# requirements.lock pins every transitive dependency to the versions the tests and benchmarks ran with.
.venv/bin/python -m pip install --quiet -c requirements.lock -e ".[dev,tracking,cluster]"

# The MLflow tracking server runs in its own environment: it pins pyarrow<26, sleeve pins pyarrow 26.
"$PYTHON" -m venv .venv-tracking
.venv-tracking/bin/python -m pip install --quiet --upgrade pip
.venv-tracking/bin/python -m pip install --quiet -r requirements-tracking-server.lock

# Debian packages: Chromium for the browser tests, PostgreSQL for the tracking server's tests.
missing=()
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  missing+=(chromium chromium-driver)
fi
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  missing+=(postgresql)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "note: install Debian's ${missing[*]} for the browser and tracking-server tests" >&2
  fi
fi
echo "sleeve is installed in .venv"
