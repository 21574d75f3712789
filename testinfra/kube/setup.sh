#!/usr/bin/env bash
# Build the etcd and kube-apiserver binaries used by tests/fixtures/kube.py, and with --cluster
# also kubelet, kube-controller-manager, kube-scheduler and kube-proxy for scripts/cluster.sh.
#
#   testinfra/kube/setup.sh                  build etcd + kube-apiserver if missing (idempotent)
#   testinfra/kube/setup.sh --cluster        ... and the four node/controller binaries
#   testinfra/kube/setup.sh --print-bin-dir  print the binary directory, build nothing
#
# Versions come from the committed wrapper modules (testinfra/etcd/go.mod and
# testinfra/kube-apiserver/go.mod); the binaries go to
#   ${DECLSERVE_TEST_CACHE:-~/.cache/declserve-test}/kube/bin/<k8s-version>-<etcd-version>/
# and the Go module/build caches to .../go/{mod,build}, so a rebuild after a version bump is
# quick. Nothing is built when the binaries asked for are already there.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INFRA=$(dirname "$HERE")
ETCD_MOD="$INFRA/etcd"
KAS_MOD="$INFRA/kube-apiserver"
CACHE=${DECLSERVE_TEST_CACHE:-$HOME/.cache/declserve-test}

die() { echo "testinfra/kube/setup.sh: ERROR: $*" >&2; exit 1; }
log() { echo "testinfra/kube/setup.sh: $*" >&2; }

# Version of module $2 as required by the go.mod in directory $1.
modversion() {
  sed -n "s#^[[:space:]]*\(require[[:space:]]\{1,\}\)\{0,1\}$2[[:space:]]\{1,\}\(v[^[:space:]]*\).*#\2#p" "$1/go.mod" | head -n1
}
K8S_VERSION=$(modversion "$KAS_MOD" k8s.io/kubernetes)
ETCD_VERSION=$(modversion "$ETCD_MOD" go.etcd.io/etcd/server/v3)
[ -n "$K8S_VERSION" ] || die "cannot read the k8s.io/kubernetes version from $KAS_MOD/go.mod"
[ -n "$ETCD_VERSION" ] || die "cannot read the go.etcd.io/etcd/server/v3 version from $ETCD_MOD/go.mod"
BIN="$CACHE/kube/bin/$K8S_VERSION-$ETCD_VERSION"

if [ "${1:-}" = "--print-bin-dir" ]; then
  echo "$BIN"
  exit 0
fi
WANT=(etcd kube-apiserver)
if [ "${1:-}" = "--cluster" ]; then
  WANT+=(kubelet kube-controller-manager kube-scheduler kube-proxy)
  shift
fi
[ $# -eq 0 ] || die "unknown argument: $1 (usage: setup.sh [--cluster | --print-bin-dir])"

have() {
  local b
  for b in "${WANT[@]}"; do [ -x "$BIN/$b" ] || return 1; done
}
if have; then
  log "${WANT[*]} ($K8S_VERSION, etcd $ETCD_VERSION) already built in $BIN"
  exit 0
fi

# ---- Go toolchain -----------------------------------------------------------------------
GO=$(command -v go || true)
if [ -z "$GO" ] && [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go; fi
need_go=$(sed -n 's/^go \([0-9.]*\).*/\1/p' "$KAS_MOD/go.mod")
[ -n "$GO" ] || die "no Go toolchain found (neither 'go' on PATH nor /usr/local/go/bin/go).
  Building kube-apiserver $K8S_VERSION needs Go >= $need_go; Debian 12's golang package (1.19)
  is too old. Install Go $need_go or newer at /usr/local/go and re-run."
have_go=$("$GO" env GOVERSION 2>/dev/null | sed 's/^go//') || true
ver_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }
[ -n "$have_go" ] && ver_ge "$have_go" "$need_go" \
  || die "$GO is Go ${have_go:-unknown}, but kube-apiserver $K8S_VERSION needs Go >= $need_go
  (GOTOOLCHAIN=local is used on purpose: no toolchain is downloaded). Install a newer Go at /usr/local/go."

export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="-mod=readonly -buildvcs=false"
export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build"
export GOMAXPROCS=${GOMAXPROCS:-2}
JOBS=${DECLSERVE_BUILD_JOBS:-2}

mkdir -p "$BIN"
trap 'rm -f "$BIN"/.*.tmp.$$' EXIT   # half-written binaries of an interrupted build
# Serialise concurrent runs (two pytest sessions starting at once).
exec 9>"$BIN/.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9 || die "cannot lock $BIN/.lock"
  if have; then log "built meanwhile by another process: $BIN"; exit 0; fi
fi

build() { # name, module dir, package, extra ldflags
  local name=$1 dir=$2 pkg=$3 ldflags=$4 t0=$SECONDS tmp="$BIN/.$1.tmp.$$"
  if [ -x "$BIN/$name" ]; then return 0; fi
  log "building $name $( [ "$name" = kube-apiserver ] && echo "(first run only; 10-25 min on 2 cores) " )..."
  (cd "$dir" && "$GO" build -p "$JOBS" -trimpath -ldflags "-s -w $ldflags" -o "$tmp" "$pkg") \
    || { rm -f "$tmp"; die "building $name failed; command: (cd $dir && GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS='$GOFLAGS' GOMODCACHE=$GOMODCACHE GOCACHE=$GOCACHE $GO build -p $JOBS -trimpath -ldflags '-s -w $ldflags' -o $tmp $pkg)"; }
  "$tmp" --version >/dev/null 2>&1 || { rm -f "$tmp"; die "the freshly built $name does not run ($tmp --version failed)"; }
  mv -f "$tmp" "$BIN/$name"
  log "built $name in $((SECONDS - t0)) s -> $BIN/$name"
}

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
build etcd "$ETCD_MOD" . ""
k8s_ldflags="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
for name in "${WANT[@]}"; do
  [ "$name" = etcd ] || build "$name" "$KAS_MOD" "k8s.io/kubernetes/cmd/$name" "$k8s_ldflags"
done

have || die "binaries missing in $BIN after the build"
log "ready: $("$BIN/etcd" --version | head -n1), kube-apiserver $("$BIN/kube-apiserver" --version | awk '{print $2}') in $BIN"
