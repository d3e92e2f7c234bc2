#!/usr/bin/env bash
# Set up sleeve on a fresh machine: a virtual environment in .venv with every pinned dependency,
# plus Debian's Chromium for the report's browser test when apt-get is available to root.
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

if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
else
  echo "note: install Debian's chromium and chromium-driver for the report's browser test" >&2
fi
echo "sleeve is installed in .venv"
