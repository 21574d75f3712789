#!/usr/bin/env bash
# Regenerate go.mod/go.sum of this wrapper module for one KServe release. Run once per version
# bump, then commit go.mod and go.sum:
#     KSERVE=v0.20.0 testinfra/kserve/manager/regen.sh
# A dependency's replace and exclude lines are not applied in a consumer module, and kserve pins
# k8s.io/* to v0.34, controller-runtime to v0.22, grpc, expr-lang and protoc-gen-validate by
# replace: without copying them `go build` picks newer, incompatible versions.
set -euo pipefail
KSERVE=${KSERVE:-v0.20.0}
CACHE=${DECLSERVE_TEST_CACHE:-$HOME/.cache/declserve-test}
GO=$(command -v go || echo /usr/local/go/bin/go)
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build"
cd "$(dirname "$0")"
rm -f go.mod go.sum
"$GO" mod init declserve.local/testinfra/kserve/manager
KMOD=$("$GO" mod download -json "github.com/kserve/kserve@$KSERVE" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
[ -s "$KMOD" ] || { echo "regen.sh: could not download github.com/kserve/kserve@$KSERVE" >&2; exit 1; }
# Both the one-line and the block form of replace/exclude, as "old => new version".
awk '
  /^replace \(/ { blk = "replace"; next }
  /^exclude \(/ { blk = "exclude"; next }
  /^\)/ { blk = ""; next }
  blk == "replace" && /=>/ { print "replace", $1, $3, $4; next }
  blk == "exclude" && NF >= 2 { print "exclude", $1, $2; next }
  /^replace [^(]/ && /=>/ { print "replace", $2, $4, $5; next }
  /^exclude [^(]/ { print "exclude", $2, $3 }
' "$KMOD" | while read -r kind old new ver; do
  if [ "$kind" = replace ]; then "$GO" mod edit -replace="$old=$new@$ver"
  else "$GO" mod edit -exclude="$old@$new"; fi
done
"$GO" mod edit -go="$(sed -n 's/^go //p' "$KMOD")"
"$GO" get -tool "github.com/kserve/kserve/cmd/manager@$KSERVE"
"$GO" mod edit -tool=github.com/kserve/kserve/cmd/agent  # the logger/batcher sidecar
"$GO" mod tidy
echo "regen.sh: go.mod/go.sum regenerated for kserve $KSERVE ($(grep -c '^replace' go.mod) replace lines)"
