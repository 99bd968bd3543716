#!/usr/bin/env bash
# Run the test suite against an existing cluster (kind, minikube, a dev
# cluster): the controller runs in the test process with the kubeconfig's
# credentials, and each test works in its own fresh namespace.
#   DISVC_TEST_KUBECONFIG=~/.kube/config hack/test-cluster.sh [pytest args]
#   hack/test-cluster.sh PATH/TO/KUBECONFIG [pytest args]
# The suite installs (or replaces) the DISVC CRD and, if it is missing,
# KServe's InferenceService CRD; it needs cluster-admin-like rights for that.
# Use a disposable cluster. Tests marked substrate_only are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DISVC_TEST_KUBECONFIG:-}" ] && [ -n "${1:-}" ]; then
  # The first argument is the kubeconfig unless pytest would take it: an
  # option, an existing test file or folder, or a test id (path::name).
  if [ -f "$1" ] && [[ $1 != *.py ]]; then
    DISVC_TEST_KUBECONFIG=$1
    shift
  elif [[ $1 != -* && $1 != *::* && ! -e $1 ]]; then
    echo "cannot read kubeconfig $1: no such file" >&2
    exit 2
  fi
fi
if [ -z "${DISVC_TEST_KUBECONFIG:-}" ]; then
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  echo "no kubeconfig: pass its path first, or set DISVC_TEST_KUBECONFIG" >&2
  exit 2
fi
if [ ! -r "$DISVC_TEST_KUBECONFIG" ]; then
  echo "cannot read kubeconfig $DISVC_TEST_KUBECONFIG" >&2
  exit 2
fi
export DISVC_TEST_KUBECONFIG
exec hack/test.sh "$@"
