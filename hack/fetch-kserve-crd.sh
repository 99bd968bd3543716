#!/usr/bin/env bash
# Get KServe's InferenceService CRD, pinned to a KServe release, into
# .cache/kserve/ (git-ignored), where the tests, the demo and the loopback API
# look for it (see kserve_crd_file in disvc/testing/crds.py for the order).
#
#   hack/fetch-kserve-crd.sh [VERSION]      download from KServe's repository at tag VERSION
#   hack/fetch-kserve-crd.sh --from FILE    take a copy you already have
#
# VERSION defaults to the release the project is checked against. The file is
# checked to be the InferenceService CRD before it replaces the cached one.
set -euo pipefail
cd "$(dirname "$0")/.."
default_version=v0.15.0
out_dir=${DISVC_CRD_CACHE:-.cache/kserve}
out="$out_dir/serving.kserve.io_inferenceservices.yaml"
python=${PYTHON:-python3}
[ -x .venv/bin/python ] && python=${PYTHON:-.venv/bin/python}

mkdir -p "$out_dir"
tmp=$(mktemp "$out_dir/.download.XXXXXX")
trap 'rm -f "$tmp"' EXIT
if [ "${1:-}" = "--from" ]; then
  [ -f "${2:-}" ] || { echo "fetch-kserve-crd: --from needs an existing file" >&2; exit 2; }
  cp "$2" "$tmp"
  source="$2"
else
  version=${1:-$default_version}
  source="https://raw.githubusercontent.com/kserve/kserve/$version/config/crd/full/serving.kserve.io_inferenceservices.yaml"
  echo "fetch-kserve-crd: downloading KServe $version"
  curl -fsSL --retry 3 -o "$tmp" "$source" || {
    echo "fetch-kserve-crd: could not download $source (is the tag right, is the network reachable?)" >&2
    exit 1
  }
fi
"$python" - "$tmp" <<'PY'
import sys

import yaml

loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
with open(sys.argv[1], encoding="utf-8") as stream:
    docs = [doc for doc in yaml.load_all(stream, Loader=loader) if doc]
names = [doc.get("metadata", {}).get("name") for doc in docs if doc.get("kind") == "CustomResourceDefinition"]
if "inferenceservices.serving.kserve.io" not in names:
    sys.exit("fetch-kserve-crd: the file holds no InferenceService CRD (inferenceservices.serving.kserve.io)")
PY
mv "$tmp" "$out"
trap - EXIT
echo "fetch-kserve-crd: $out (from $source)"
