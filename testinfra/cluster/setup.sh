#!/usr/bin/env bash
# Install and build everything scripts/cluster.sh needs, idempotently, as root:
#
#   - Debian packages: containerd, runc (the Docker engine brings both; a SECOND containerd is
#     run from them, the engine's is never touched), containernetworking-plugins (/usr/lib/cni),
#     iptables, conntrack (kube-proxy), nftables (to remove empty tables iptables-nft leaves);
#   - kubelet, kube-controller-manager, kube-scheduler, kube-proxy (and etcd, kube-apiserver)
#     from the project's wrapper modules: testinfra/kube/setup.sh --cluster;
#   - CoreDNS with a handful of plugins, from testinfra/cluster/coredns (its own wrapper module);
#   - the pod sandbox ("pause") image, compiled from the k8s.io/kubernetes module's
#     build/pause/linux/pause.c and built FROM scratch without network.
#
#   testinfra/cluster/setup.sh              install/build whatever is missing
#   testinfra/cluster/setup.sh --print-env  print the paths as shell assignments, build nothing
#
# Everything built goes under ${DECLSERVE_TEST_CACHE:-~/.cache/declserve-test}/: kube/bin/...,
# cluster/bin/coredns-<version>/, the Go caches go/{mod,build}. Nothing is committed but the
# wrapper files. A second run with everything present takes about a second.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INFRA=$(dirname "$HERE")
CACHE=${DECLSERVE_TEST_CACHE:-$HOME/.cache/declserve-test}
DNS_MOD="$HERE/coredns"

die() { echo "testinfra/cluster/setup.sh: ERROR: $*" >&2; exit 1; }
log() { echo "testinfra/cluster/setup.sh: $*" >&2; }

COREDNS_VERSION=$(sed -n 's#^require github.com/coredns/coredns \(v[^ ]*\).*#\1#p' "$DNS_MOD/go.mod")
[ -n "$COREDNS_VERSION" ] || die "cannot read the CoreDNS version from $DNS_MOD/go.mod"
KUBE_BIN=$(bash "$INFRA/kube/setup.sh" --print-bin-dir)
K8S_VERSION=${KUBE_BIN##*/}; K8S_VERSION=${K8S_VERSION%%-*}
DNS_BIN="$CACHE/cluster/bin/coredns-$COREDNS_VERSION"
PAUSE_IMAGE="declserve/pause:$K8S_VERSION"

if [ "${1:-}" = "--print-env" ]; then
  printf 'KUBE_BIN=%q\nDNS_BIN=%q\nPAUSE_IMAGE=%q\nCOREDNS_VERSION=%q\nK8S_VERSION=%q\n' \
    "$KUBE_BIN" "$DNS_BIN" "$PAUSE_IMAGE" "$COREDNS_VERSION" "$K8S_VERSION"
  exit 0
fi
[ $# -eq 0 ] || die "unknown argument: $1 (usage: setup.sh [--print-env])"
[ "$(id -u)" -eq 0 ] || die "must run as root (it installs Debian packages)"

# ---- Debian packages ----------------------------------------------------------------------
need=()
[ -x /usr/bin/containerd ] && [ -x /usr/bin/containerd-shim-runc-v2 ] && [ -x /usr/bin/ctr ] \
  || need+=(containerd)
[ -x /usr/sbin/runc ] || need+=(runc)
for p in bridge host-local loopback; do [ -x "/usr/lib/cni/$p" ] || { need+=(containernetworking-plugins); break; }; done
command -v iptables >/dev/null || need+=(iptables)
command -v conntrack >/dev/null || need+=(conntrack)
command -v nft >/dev/null || need+=(nftables)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 \
    --no-install-recommends "${need[@]}" >/dev/null
fi

# ---- Kubernetes binaries --------------------------------------------------------------------
bash "$INFRA/kube/setup.sh" --cluster

# ---- CoreDNS --------------------------------------------------------------------------------
if [ ! -x "$DNS_BIN/coredns" ]; then
  GO=$(command -v go || echo /usr/local/go/bin/go)
  [ -x "$GO" ] || die "no Go toolchain (needed to build CoreDNS $COREDNS_VERSION)"
  mkdir -p "$DNS_BIN"
  exec 8>"$DNS_BIN/.lock"
  flock 8
  if [ ! -x "$DNS_BIN/coredns" ]; then
    t0=$SECONDS tmp="$DNS_BIN/.coredns.tmp.$$"
    log "building CoreDNS $COREDNS_VERSION ..."
    (cd "$DNS_MOD" && GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
      GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" \
      "$GO" build -p "${DECLSERVE_BUILD_JOBS:-2}" -trimpath -ldflags "-s -w" -o "$tmp" .) \
      || { rm -f "$tmp"; die "building CoreDNS failed: (cd $DNS_MOD && go build -trimpath -o $tmp .)"; }
    "$tmp" -version >/dev/null || { rm -f "$tmp"; die "the freshly built coredns does not run"; }
    mv -f "$tmp" "$DNS_BIN/coredns"
    log "built CoreDNS in $((SECONDS - t0)) s -> $DNS_BIN/coredns"
  fi
  exec 8>&-
fi

# ---- pause image ----------------------------------------------------------------------------
bash "$INFRA/docker/ensure-dockerd.sh" >/dev/null
if ! docker image inspect "$PAUSE_IMAGE" >/dev/null 2>&1; then
  src="$CACHE/go/mod/k8s.io/kubernetes@$K8S_VERSION/build/pause/linux/pause.c"
  if [ ! -f "$src" ]; then
    (cd "$INFRA/kube-apiserver" && GOWORK=off GOTOOLCHAIN=local GOFLAGS=-mod=readonly \
      GOMODCACHE="$CACHE/go/mod" go mod download "k8s.io/kubernetes") >/dev/null
  fi
  [ -f "$src" ] || die "no $src in the Go module cache"
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  gcc -Os -Wall -Werror -static -DVERSION="$K8S_VERSION-declserve" -o "$ctx/pause" "$src"
  strip "$ctx/pause"
  cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
EOF
  DOCKER_BUILDKIT=0 docker build --quiet --network=none \
    --label "io.declserve.pause-source=k8s.io/kubernetes@$K8S_VERSION build/pause/linux/pause.c" \
    -t "$PAUSE_IMAGE" "$ctx" >/dev/null
  log "built $PAUSE_IMAGE"
fi
log "ready: Kubernetes $K8S_VERSION in $KUBE_BIN, CoreDNS $COREDNS_VERSION, $PAUSE_IMAGE"
