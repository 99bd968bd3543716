#!/usr/bin/env bash
# Check the install manifests without a cluster:
#   1. render config/default (and config/prometheus, config/samples) with
#      `kubectl kustomize` (kustomize v5, built into kubectl);
#   2. validate every built-in object against the Kubernetes schemas
#      (kubernetes-validate, strict: unknown fields are errors);
#   3. check the CRD: every unit test that reads it (the builders' schema
#      tests, the manifest tests) must pass.
# Usage: hack/verify-manifests.sh [KUBERNETES_VERSION]   (default 1.30)
# Uses the virtualenv hack/test.sh creates (.venv, or $DISVC_VENV), or the
# interpreter in $PYTHON; it needs the project's "test" extra installed.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-${DISVC_VENV:-.venv}/bin/python}
if ! "$python" -c 'import kubernetes_validate, pytest, yaml' 2>/dev/null; then
  echo "$python lacks kubernetes-validate/pytest: run hack/test.sh once, or set PYTHON" >&2
  exit 2
fi
if ! command -v kubectl >/dev/null; then
  echo "kubectl not found: it renders the kustomizations (kubectl kustomize)" >&2
  exit 2
fi
version=${1:-1.30}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== render"
for dir in default prometheus samples; do
  kubectl kustomize "config/$dir" >"$out/$dir.yaml"
  echo "config/$dir: $(grep -c '^kind:' "$out/$dir.yaml") objects"
done

echo "== validate against Kubernetes $version schemas"
"$python" - "$out/default.yaml" "$version" <<'PY'
import sys

import kubernetes_validate
import yaml

path, version = sys.argv[1], sys.argv[2]
failures = 0
with open(path, encoding="utf-8") as stream:
    for obj in yaml.safe_load_all(stream):
        ref = f"{obj['kind']} {obj['metadata'].get('namespace', '-')}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as error:
            failures += 1
            print(f"FAIL {ref}: {error}")
        else:
            print(f"ok   {ref}")
sys.exit(1 if failures else 0)
PY

echo "== CRD"
# Every unit test file that reads the CRD (the builders' schema tests and
# tests/unit/test_manifests.py) must pass against the tree's CRD.
mapfile -t tests < <(grep -rlE 'config/crd|"crd"|CustomResourceDefinition' tests/unit --include='test_*.py' | sort)
"$python" -m pytest -q -p no:cacheprovider "${tests[@]}"
