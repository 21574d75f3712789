#!/usr/bin/env bash
# Build KServe's controller (`manager`) and collect the manifests testinfra/kserve/run.sh
# installs, idempotently:
#
#   testinfra/kserve/setup.sh              build/fetch whatever is missing
#   testinfra/kserve/setup.sh --print-env  print the paths as shell assignments, build nothing
#
# The version comes from the committed wrapper module testinfra/kserve/manager/go.mod (it
# carries kserve's own replace/exclude lines: a dependency's are not applied in a consumer
# module; regenerate it with manager/regen.sh). Outputs, under
# ${DECLSERVE_TEST_CACHE:-~/.cache/declserve-test}/:
#   kserve/bin/<version>/manager           the controller (out of cluster, webhooks included)
#   kserve/manifests/<version>/crd/*.yaml  the CRDs (config/crd/full, its clusterstoragecontainer
#                                          and localmodel folders)
#   kserve/manifests/<version>/webhook.yaml          config/webhook/manifests.yaml
#   kserve/manifests/<version>/inferenceservice.yaml config/configmap/inferenceservice.yaml
# The manifests are copied out of the Go module cache (go/mod), where `go mod download` puts
# the kserve module's source: the Go module proxy is the only network used. A second run with
# everything present is a no-op.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MOD="$HERE/manager"
CACHE=${DECLSERVE_TEST_CACHE:-$HOME/.cache/declserve-test}

die() { echo "testinfra/kserve/setup.sh: ERROR: $*" >&2; exit 1; }
log() { echo "testinfra/kserve/setup.sh: $*" >&2; }

KSERVE_VERSION=$(sed -n 's#^[[:space:]]*github.com/kserve/kserve \(v[^ ]*\).*#\1#p' "$MOD/go.mod" | head -n1)
[ -n "$KSERVE_VERSION" ] || die "cannot read the github.com/kserve/kserve version from $MOD/go.mod"
BIN_DIR="$CACHE/kserve/bin"
# named `manager` as in KServe's image: controller-runtime's field manager is the binary's name
MANAGER="$BIN_DIR/$KSERVE_VERSION/manager"
AGENT="$BIN_DIR/$KSERVE_VERSION/agent"
MANIFESTS="$CACHE/kserve/manifests/$KSERVE_VERSION"

if [ "${1:-}" = "--print-env" ]; then
  printf 'KSERVE_VERSION=%q\nKSERVE_MANAGER=%q\nKSERVE_AGENT=%q\nKSERVE_MANIFESTS=%q\n' \
    "$KSERVE_VERSION" "$MANAGER" "$AGENT" "$MANIFESTS"
  exit 0
fi
[ $# -eq 0 ] || die "unknown argument: $1 (usage: setup.sh [--print-env])"

have() { [ -x "$MANAGER" ] && [ -x "$AGENT" ] && [ -f "$MANIFESTS/.complete" ]; }
if have; then
  log "kserve $KSERVE_VERSION already built: $MANAGER"
  exit 0
fi

GO=$(command -v go || echo /usr/local/go/bin/go)
[ -x "$GO" ] || die "no Go toolchain (needed to build kserve $KSERVE_VERSION's manager; Go >= $(sed -n 's/^go //p' "$MOD/go.mod"))"
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="-mod=mod -buildvcs=false"
export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build"
export GOMAXPROCS=${GOMAXPROCS:-2}

mkdir -p "$BIN_DIR/$KSERVE_VERSION"
exec 9>"$BIN_DIR/.lock"   # two test sessions starting at once build once
flock 9 || die "cannot lock $BIN_DIR/.lock"
if have; then log "built meanwhile by another process: $MANAGER"; exit 0; fi

build_cmd() { # name, what, output: go build github.com/kserve/kserve/cmd/<name>, once
  local name=$1 what=$2 out=$3
  [ -x "$out" ] && return 0
  local t0=$SECONDS
  tmp="$out.tmp.$$"
  trap 'rm -f "$tmp"' EXIT
  log "building kserve $KSERVE_VERSION $name ($what) ..."
  (cd "$MOD" && "$GO" build -p "${DECLSERVE_BUILD_JOBS:-2}" -trimpath -ldflags "-s -w" \
    -o "$tmp" "github.com/kserve/kserve/cmd/$name") \
    || die "building the $name failed: (cd $MOD && go build -o $tmp github.com/kserve/kserve/cmd/$name)"
  "$tmp" --help >/dev/null 2>&1 || [ $? -eq 2 ] || die "the freshly built $name does not run ($tmp --help)"
  mv -f "$tmp" "$out"
  log "built the $name in $((SECONDS - t0)) s -> $out"
}
build_cmd manager "several minutes when the build cache is cold" "$MANAGER"
build_cmd agent "the logger/batcher sidecar" "$AGENT"

SRC=$(cd "$MOD" && "$GO" mod download -json "github.com/kserve/kserve@$KSERVE_VERSION" \
  | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
[ -d "$SRC/config" ] || die "no kserve source in the Go module cache (go mod download github.com/kserve/kserve@$KSERVE_VERSION)"
tmpd="$MANIFESTS.tmp.$$"
rm -rf "$tmpd" && mkdir -p "$tmpd/crd"
# Only what the Standard-mode InferenceService controller watches or lists at start; the
# llmisvc CRDs need a conversion webhook of their own and are left out.
cp "$SRC"/config/crd/full/serving.kserve.io_*.yaml \
  "$SRC"/config/crd/full/clusterstoragecontainer/serving.kserve.io_*.yaml \
  "$SRC"/config/crd/full/localmodel/serving.kserve.io_*.yaml "$tmpd/crd/"
cp "$SRC/config/webhook/manifests.yaml" "$tmpd/webhook.yaml"
cp "$SRC/config/configmap/inferenceservice.yaml" "$tmpd/inferenceservice.yaml"
chmod -R u+w "$tmpd"   # the module cache is read-only; so would the copies be
touch "$tmpd/.complete"
rm -rf "$MANIFESTS" && mkdir -p "$(dirname "$MANIFESTS")" && mv "$tmpd" "$MANIFESTS"
log "ready: kserve $KSERVE_VERSION: $MANAGER, manifests in $MANIFESTS"
