#!/usr/bin/env bash
# The whole test suite, as CI runs it: install into .venv (once), check the
# import layers and types, then run every test against the loopback API
# (or KUBEBUILDER_ASSETS / DISVC_TEST_KUBECONFIG when set).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${DISVC_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
echo "== import layers (lint-imports)"
"$venv/bin/lint-imports" --no-cache
echo "== types (mypy --strict)"
"$venv/bin/mypy"
echo "== tests (pytest)"
exec "$venv/bin/python" -m pytest "$@"
