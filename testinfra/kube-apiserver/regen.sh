#!/usr/bin/env bash
# Regenerate go.mod/go.sum of this wrapper module for one Kubernetes release.
# Run once per version bump, then commit go.mod and go.sum:
#     K8S=v1.36.3 testinfra/kube-apiserver/regen.sh
# k8s.io/kubernetes requires every staging module (k8s.io/api, ...) at v0.0.0 and maps it to
# ./staging/src/...; those replace lines are ignored in a consumer module, so each staging
# module that k8s.io/kubernetes actually requires is replaced here with v0.<minor>.<patch>.
set -euo pipefail
K8S=${K8S:-v1.36.3}
STG=v0.${K8S#v1.}                        # v1.36.3 -> v0.36.3
GO=$(command -v go || echo /usr/local/go/bin/go)
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
cd "$(dirname "$0")"
rm -f go.mod go.sum
"$GO" mod init declserve.local/testinfra/kube-apiserver
KMOD=$("$GO" mod download -json "k8s.io/kubernetes@$K8S" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
[ -s "$KMOD" ] || { echo "regen.sh: could not download k8s.io/kubernetes@$K8S" >&2; exit 1; }
# Staging modules that k8s.io/kubernetes requires (a replace line for a module outside the
# build graph is harmless, but e.g. k8s.io/sample-cli-plugin is not served at all).
for m in $(sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/src/.*#\1#p' "$KMOD"); do
  if grep -Eq "^[[:space:]]*$m v0\.0\.0( |$)" "$KMOD"; then
    "$GO" mod edit -replace="$m=$m@$STG"
  fi
done
# Mirror upstream's toolchain floor and godebug defaults (e.g. "godebug default=go1.26").
"$GO" mod edit -go="$(sed -n 's/^go //p' "$KMOD")"
gd=$(sed -n 's/^godebug //p' "$KMOD")
[ -z "$gd" ] || "$GO" mod edit -godebug="$gd"
# The tool directives keep the commands in go.mod (and in `go mod tidy`): kube-apiserver for the
# API-server-only fixture, the other four for the single-node cluster (scripts/cluster.sh).
for cmd in kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy; do
  "$GO" get -tool "k8s.io/kubernetes/cmd/$cmd@$K8S"
done
"$GO" mod tidy
echo "regen.sh: go.mod/go.sum regenerated for $K8S (staging modules at $STG)"
