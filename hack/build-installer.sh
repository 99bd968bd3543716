#!/usr/bin/env bash
# Render one install file naming your controller image, as kubebuilder's
# `make build-installer` does (kustomize's `images:` setting), without editing
# anything under config/:
#
#   hack/build-installer.sh IMAGE [--ingress-domain D] [--ingress-class C]
#                                 [--namespace NS] [--out FILE]
#   kubectl apply -f dist/install.yaml
#
# IMAGE is what your nodes pull: REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:...
# --ingress-domain and --ingress-class set the controller's two Ingress flags
# (defaults: example.com, which reaches nobody, and the cluster's default
# IngressClass); --namespace installs the controller elsewhere than
# disvc-system; --out writes elsewhere than dist/install.yaml. The file holds
# what `kubectl apply -k config/default` applies: the DISVC CRD, RBAC, the
# namespace, the controller Deployment and its metrics Service. Needs kubectl
# (its built-in kustomize).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
  [ -n "${1:-}" ] && echo "build-installer: $1" >&2
  exit 2
}

image="" domain="" class="" class_set="" namespace="" out=dist/install.yaml
while [ $# -gt 0 ]; do
  case $1 in
    --ingress-domain) [ $# -ge 2 ] || usage "$1 needs a value"; domain=$2; shift 2 ;;
    --ingress-class) [ $# -ge 2 ] || usage "$1 needs a value"; class=$2; class_set=1; shift 2 ;;
    --namespace) [ $# -ge 2 ] || usage "$1 needs a value"; namespace=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || usage "$1 needs a value"; out=$2; shift 2 ;;
    -h|--help) usage ;;
    -*) usage "unknown option $1" ;;
    *) [ -z "$image" ] || usage "one IMAGE only (got $image and $1)"; image=$1; shift ;;
  esac
done
[ -n "$image" ] || usage "IMAGE is required, e.g. registry.example.com/disvc-controller:0.1.0"
command -v kubectl >/dev/null || { echo "build-installer: kubectl not found (it renders config/ with kustomize)" >&2; exit 2; }

# Split IMAGE into kustomize's newName and newTag or digest. A ':' after the
# last '/' starts the tag; a ':' before it is a registry port.
name=$image tag="" digest=""
if [[ $image == *@* ]]; then
  name=${image%%@*}
  digest=${image#*@}
elif [[ ${image##*/} == *:* ]]; then
  name=${image%:*}
  tag=${image##*:}
fi
[ -n "$name" ] || usage "IMAGE $image has no name"

mkdir -p dist
overlay=$(mktemp -d dist/.build-installer.XXXXXX)
trap 'rm -rf "$overlay" "$out.tmp"' EXIT
# JSON strings for the YAML below: a value is never read as YAML syntax.
quote() { printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\"]/\\&/g')"; }
{
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "resources:"
  echo "  - ../../config/default"
  [ -n "$namespace" ] && echo "namespace: $(quote "$namespace")"
  echo "images:"
  echo "  - name: disvc-controller"
  echo "    newName: $(quote "$name")"
  [ -n "$tag" ] && echo "    newTag: $(quote "$tag")"
  [ -n "$digest" ] && echo "    digest: $(quote "$digest")"
  if [ -n "$domain" ] || [ -n "$class_set" ]; then
    # `test` first: if manager.yaml's args move, the build fails instead of
    # replacing the wrong flag.
    args=/spec/template/spec/containers/0/args
    echo "patches:"
    echo "  - target: {kind: Deployment, name: disvc-controller-manager}"
    echo "    patch: |-"
    if [ -n "$domain" ]; then
      echo "      - {op: test, path: $args/0, value: \"--ingress-domain=example.com\"}"
      echo "      - {op: replace, path: $args/0, value: $(quote "--ingress-domain=$domain")}"
    fi
    if [ -n "$class_set" ]; then
      echo "      - {op: test, path: $args/1, value: \"--ingress-class=\"}"
      echo "      - {op: replace, path: $args/1, value: $(quote "--ingress-class=$class")}"
    fi
  fi
} >"$overlay/kustomization.yaml"

version=$(sed -n 's/^version *= *//p' setup.cfg)
mkdir -p "$(dirname "$out")"
{
  echo "# disvc $version install file for image $image"
  echo "# Made by hack/build-installer.sh; apply with: kubectl apply -f $out"
  kubectl kustomize "$overlay"
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "build-installer: $out ($(grep -c '^kind:' "$out") objects, image $image)"
