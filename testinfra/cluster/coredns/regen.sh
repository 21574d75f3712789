#!/usr/bin/env bash
# Regenerate go.mod/go.sum of this wrapper module for one CoreDNS release, then commit both:
#     COREDNS=v1.15.0 testinfra/cluster/coredns/regen.sh
set -euo pipefail
COREDNS=${COREDNS:-v1.15.0}
GO=$(command -v go || echo /usr/local/go/bin/go)
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
cd "$(dirname "$0")"
rm -f go.mod go.sum
"$GO" mod init declserve.local/testinfra/cluster/coredns
"$GO" get "github.com/coredns/coredns@$COREDNS"
# CoreDNS's own toolchain floor, not the local patch release.
KMOD=$("$GO" mod download -json "github.com/coredns/coredns@$COREDNS" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
"$GO" mod edit -go="$(sed -n 's/^go //p' "$KMOD")"
"$GO" mod tidy
echo "regen.sh: go.mod/go.sum regenerated for CoreDNS $COREDNS"
