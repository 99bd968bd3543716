#!/usr/bin/env bash
# Install disvc into .venv and show it working: with no arguments against the
# local Kubernetes API the tests use (no cluster needed); with
# --kubeconfig PATH against that cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${DISVC_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[testing,dataplane]'
exec "$venv/bin/python" hack/demo.py "$@"
