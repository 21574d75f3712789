#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, for the tests and for trying
# declserve's Kubernetes backend locally. Run as root.
#
#   scripts/cluster.sh up      start it (or reuse the running one); last line: export KUBECONFIG=...
#   scripts/cluster.sh down    stop everything `up` started and restore the host
#   scripts/cluster.sh env     print the export line of the running cluster (exit 1 when none)
#   scripts/cluster.sh status  one line per component
#   scripts/cluster.sh images IMAGE...  import local Docker images into the running cluster
#
# What runs: etcd, kube-apiserver, kube-controller-manager, kube-scheduler on 127.0.0.1; a
# SECOND containerd (own root, state and sockets; the Docker engine's is never touched) with
# runc; kubelet (node "k8s-node", IP 10.244.0.1 on the bridge k8sn0 this script makes, pods in
# 10.244.0.0/24 via the CNI bridge plugin); kube-proxy (iptables mode, NodePorts on 127.0.0.1
# only); CoreDNS on 10.244.0.1:53 serving cluster.local (it forwards nothing). The project's
# locally built images are imported into that containerd; pods use imagePullPolicy: Never.
#
# Binaries, images and Go caches: testinfra/cluster/setup.sh (run here when something is
# missing). Ports on 127.0.0.1 are chosen free at each `up`. State of the running cluster:
# $DECLSERVE_TEST_CACHE/cluster/run (default ~/.cache/declserve-test/cluster/run), removed by
# `down`; images stay in .../cluster/containerd between runs. Environment:
#   DECLSERVE_CLUSTER_IMAGES   extra local Docker images to import (space separated)
#   DECLSERVE_CLUSTER_TIMEOUT  seconds `up` waits for each phase (default 120)
#
# What `down` restores (see testinfra/cluster/NOTES.md): the sysctls kubelet and kube-proxy set
# (saved at `up`), the KUBE-* iptables chains and jumps (IPv4 and IPv6) that were not there
# before `up` - never Docker's -, empty nft tables iptables-nft created, the FORWARD rule for the
# pod bridge, the bridge and veths, cgroup directories under /k8s-node, mounts under the state
# directories, and the host paths kubelet/CNI create when they did not exist before.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${DECLSERVE_TEST_CACHE:-$HOME/.cache/declserve-test}
CL="$CACHE/cluster"
W="$CL/run"
CROOT="$CL/containerd"
TIMEOUT=${DECLSERVE_CLUSTER_TIMEOUT:-120}
BRIDGE=k8sn0
NODE_IP=10.244.0.1
POD_CIDR=10.244.0.0/24
CLUSTER_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/24
NODE=k8s-node
CGROUP_ROOT=k8s-node
CGROUP_HIERARCHIES=(cpu cpuacct cpuset memory devices freezer blkio pids systemd hugetlb net_cls net_prio perf_event rdma misc)
# sysctls kubelet (setupKernelTunables), kube-proxy and the CNI bridge plugin may change
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.conf.all.route_localnet
  net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.bridge.bridge-nf-call-iptables
  net.bridge.bridge-nf-call-ip6tables)
# host paths kubelet, containerd's CNI library and runc create outside the state directories
HOST_PATHS=(/var/lib/kubelet /var/lib/kubelet/device-plugins /var/log/containers /var/log/pods
  /var/lib/cni /var/lib/cni/results /run/containerd/runc/k8s.io
  /var/run/netns /etc/cni /opt/cni)
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy coredns)

say() { printf '\033[1mcluster:\033[0m %s\n' "$*" >&2; }
die() { printf 'cluster: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"

binpath() {
  case "$1" in
    containerd) echo /usr/bin/containerd ;;
    coredns) echo "$DNS_BIN/coredns" ;;
    *) echo "$KUBE_BIN/$1" ;;
  esac
}

load_paths() { eval "$(bash "$REPO/testinfra/cluster/setup.sh" --print-env)"; }

pid_of() { # pid of a component we started, or nothing
  local f="$W/pids/$1" pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  local cmdline
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
  if [[ "$cmdline" == *"$(binpath "$1")"* ]]; then echo "$pid"; fi
}

start() { # name, args...: start in its own session, log to $W/logs/<name>.log
  local name=$1; shift
  local bin; bin=$(binpath "$name")
  [ -z "$(pid_of "$name")" ] || return 0
  # 7>&-: the daemons must not inherit (and so hold) the lock of this script
  setsid "$bin" "$@" >>"$W/logs/$name.log" 2>&1 </dev/null 7>&- &
  echo $! >"$W/pids/$name"
}

stop() { # name: SIGTERM, then SIGKILL after 20 s
  local name=$1 pid i
  pid=$(pid_of "$name")
  [ -n "$pid" ] || { rm -f "$W/pids/$name"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    [ -d "/proc/$pid" ] || break
    sleep 0.1 # poll interval
  done
  if [ -d "/proc/$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
  for ((i = 0; i < 100; i++)); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  rm -f "$W/pids/$name"
}

wait_for() { # description, command...: poll until it succeeds or TIMEOUT; check the component
  local what=$1; shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    local c
    for c in "${COMPONENTS[@]}"; do
      if [ -f "$W/pids/$c" ] && [ -z "$(pid_of "$c")" ]; then
        tail -n 30 "$W/logs/$c.log" >&2 || true
        die "$c exited while waiting for $what (log: $W/logs/$c.log)"
      fi
    done
    if [ $SECONDS -ge $deadline ]; then die "timed out after ${TIMEOUT}s waiting for $what"; fi
    sleep 0.2 # poll interval, bounded by the deadline
  done
}

kc() { /usr/bin/kubectl --kubeconfig "$W/admin.kubeconfig" "$@"; }

http_ok() { # url [token]: 2xx from a loopback/bridge endpoint, CA-verified, no proxy
  local url=$1 tok=${2:-}
  if [ -n "$tok" ]; then
    curl -fsS --noproxy '*' --max-time 3 --cacert "$W/pki/ca.crt" -H "Authorization: Bearer $tok" "$url"
  else
    curl -fsS --noproxy '*' --max-time 3 --cacert "$W/pki/ca.crt" "$url"
  fi
}

dns_answers() { # name: an A record from the cluster DNS
  python3 "$REPO/testinfra/cluster/dnsquery.py" "$NODE_IP" "$1"
}

# ---- host state saved at up, restored at down -----------------------------------------------

save_host() {
  mkdir -p "$W/saved"
  local k
  : >"$W/saved/sysctls"
  for k in "${SYSCTLS[@]}"; do
    if v=$(sysctl -n "$k" 2>/dev/null); then printf '%s=%s\n' "$k" "$v" >>"$W/saved/sysctls"; fi
  done
  : >"$W/saved/paths"
  for k in "${HOST_PATHS[@]}"; do [ -e "$k" ] && echo "$k" >>"$W/saved/paths"; done
  : >"$W/saved/cgroups"
  for k in "${CGROUP_HIERARCHIES[@]}" unified; do
    [ -d "/sys/fs/cgroup/$k/$CGROUP_ROOT" ] && echo "$k" >>"$W/saved/cgroups"
  done
  local ipt
  for ipt in iptables ip6tables; do
    "$ipt-save" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p' | sort -u >"$W/saved/$ipt-kube-chains"
  done
  if command -v nft >/dev/null; then nft list tables 2>/dev/null | sort >"$W/saved/nft-tables"; fi
  return 0
}

restore_sysctls() {
  [ -f "$W/saved/sysctls" ] || return 0
  local line k v cur
  while IFS= read -r line; do
    k=${line%%=*}; v=${line#*=}
    cur=$(sysctl -n "$k" 2>/dev/null) || continue
    if [ "$cur" != "$v" ]; then sysctl -q -w "$k=$v" >/dev/null || say "could not restore $k=$v"; fi
  done <"$W/saved/sysctls"
}

clean_iptables() {
  local ipt table chain rule
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    local keep="$W/saved/$ipt-kube-chains"
    [ -f "$keep" ] || keep=/dev/null
    for table in filter nat mangle raw; do
      "$ipt" -t "$table" -S >/dev/null 2>&1 || continue
      local ours
      ours=$("$ipt" -t "$table" -S 2>/dev/null | sed -n 's/^-N \(KUBE-[^ ]*\)$/\1/p' | grep -vxF -f "$keep" || true)
      [ -n "$ours" ] || continue
      # jumps to our chains from any chain (built-in or KUBE-*), then the chains themselves
      while IFS= read -r rule; do
        chain=$(awk '{print $NF}' <<<"$rule")
        grep -qxF "$chain" <<<"$ours" || continue
        eval "\"$ipt\" -t \"$table\" -D ${rule#-A }" 2>/dev/null || true
      done < <("$ipt" -t "$table" -S 2>/dev/null | grep -E -- '^-A .* -j KUBE-[^ ]+$' || true)
      for chain in $ours; do "$ipt" -t "$table" -F "$chain" 2>/dev/null || true; done
      for chain in $ours; do "$ipt" -t "$table" -X "$chain" 2>/dev/null || true; done
    done
  done
  # Tables that iptables-nft (or kube-proxy) created and that are empty now.
  if command -v nft >/dev/null && [ -f "$W/saved/nft-tables" ]; then
    local t
    while IFS= read -r t; do
      [ -n "$t" ] || continue
      case "$t" in
        "table ip "* | "table ip6 "*) ;;
        *) continue ;;
      esac
      # a table whose chains hold no rule: only "chain X {", "type ... hook ...;" and "}" lines
      local listing
      # shellcheck disable=SC2086
      listing=$(nft list table ${t#table } 2>/dev/null) || continue
      if [ -z "$(grep -vE '^table |^\s*chain |^\s*type |^\s*}|^\s*$' <<<"$listing")" ]; then
        # shellcheck disable=SC2086
        nft delete table ${t#table } 2>/dev/null || true
      fi
    done < <(nft list tables 2>/dev/null | sort | comm -23 - "$W/saved/nft-tables")
  fi
}

forward_rule() { # add | del: let bridged/DNATed pod traffic through a FORWARD policy of DROP
  local spec=(FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment declserve-cluster-pod-bridge -j ACCEPT)
  if [ "$1" = add ]; then
    iptables -C "${spec[@]}" 2>/dev/null || iptables -I "${spec[@]}"
  else
    while iptables -C "${spec[@]}" 2>/dev/null; do iptables -D "${spec[@]}"; done
  fi
}

make_cgroups() {
  local h d
  for h in "${CGROUP_HIERARCHIES[@]}"; do
    d="/sys/fs/cgroup/$h"
    [ -d "$d" ] && [ -f "$d/cgroup.procs" ] || continue
    mkdir -p "$d/$CGROUP_ROOT"
    if [ "$h" = cpuset ]; then
      cat "$d/cpuset.cpus" >"$d/$CGROUP_ROOT/cpuset.cpus"
      cat "$d/cpuset.mems" >"$d/$CGROUP_ROOT/cpuset.mems"
    fi
  done
}

remove_cgroups() {
  local h d
  # kubelet also makes its tree in the cgroup v2 hierarchy mounted at /sys/fs/cgroup/unified
  for h in "${CGROUP_HIERARCHIES[@]}" unified; do
    d="/sys/fs/cgroup/$h/$CGROUP_ROOT"
    [ -d "$d" ] || continue
    if [ -f "$W/saved/cgroups" ] && grep -qxF "$h" "$W/saved/cgroups"; then continue; fi
    # processes left in them (there should be none): move them to the root cgroup
    find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r p; do
      echo "$p" >"/sys/fs/cgroup/$h/cgroup.procs" 2>/dev/null || true
    done
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ -d "$d" ] && say "could not remove $d"
  done
  return 0
}

unmount_under() { # unmount everything mounted below the given directories, deepest first
  local prefix m
  for prefix in "$@"; do
    [ -n "$prefix" ] || continue
    while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "could not unmount $m"
    done < <(findmnt -rn -o TARGET | awk -v p="$prefix/" 'index($0, p) == 1' | sort -r)
  done
}

# ---- configuration --------------------------------------------------------------------------

free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

write_kubeconfig() { # file, user, token
  umask 077
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: declserve-cluster
  cluster:
    server: https://127.0.0.1:$P_APISERVER
    certificate-authority: $W/pki/ca.crt
users:
- name: $2
  user:
    token: $3
contexts:
- name: declserve-cluster
  context: {cluster: declserve-cluster, user: $2, namespace: default}
current-context: declserve-cluster
EOF
  umask 022
}

make_pki() {
  local d="$W/pki"
  mkdir -p "$d"
  (
    cd "$d"
    umask 077
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -days 30 -subj /CN=declserve-cluster-ca -keyout ca.key -out ca.crt 2>/dev/null
    cert() { # name, subject, extensions
      openssl req "${ec[@]}" -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
      printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n%s\n' "$3" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    cert apiserver /CN=kube-apiserver "extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,IP:$NODE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
    cert kubelet "/CN=$NODE" "extendedKeyUsage=serverAuth
subjectAltName=IP:$NODE_IP,DNS:$NODE"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out sa.key 2>/dev/null
    openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
    chmod 644 ca.crt
  )
  # One token per component; the file stays readable by root only and is never printed.
  local f="$W/pki/tokens.csv" u
  umask 077
  : >"$f"
  tok() { python3 -c 'import secrets; print(secrets.token_hex(24))'; }
  T_ADMIN=$(tok); T_NODE=$(tok); T_KCM=$(tok); T_SCHED=$(tok); T_PROXY=$(tok); T_DNS=$(tok)
  {
    echo "$T_ADMIN,admin,admin-uid,\"system:masters\""
    echo "$T_NODE,system:node:$NODE,node-uid,\"system:nodes\""
    echo "$T_KCM,system:kube-controller-manager,kcm-uid"
    echo "$T_SCHED,system:kube-scheduler,sched-uid"
    echo "$T_PROXY,system:kube-proxy,proxy-uid"
    echo "$T_DNS,system:declserve-coredns,coredns-uid"
  } >>"$f"
  umask 022
  write_kubeconfig "$W/admin.kubeconfig" admin "$T_ADMIN"
  write_kubeconfig "$W/kubelet.kubeconfig" "system:node:$NODE" "$T_NODE"
  write_kubeconfig "$W/kcm.kubeconfig" system:kube-controller-manager "$T_KCM"
  write_kubeconfig "$W/scheduler.kubeconfig" system:kube-scheduler "$T_SCHED"
  write_kubeconfig "$W/proxy.kubeconfig" system:kube-proxy "$T_PROXY"
  write_kubeconfig "$W/coredns.kubeconfig" system:declserve-coredns "$T_DNS"
  unset T_NODE T_KCM T_SCHED T_PROXY T_DNS
}

write_configs() {
  mkdir -p "$W/cni" "$W/cni-ipam" "$W/kubelet" "$W/pod-logs" "$W/containerd/state" "$W/runc" "$CROOT"
  cat >"$W/containerd/config.toml" <<EOF
# The cluster's own containerd: NOT the Docker engine's (own root, state and sockets).
version = 2
root = "$CROOT"
state = "$W/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "$W/containerd/containerd.sock"
[ttrpc]
  address = "$W/containerd/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$W/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  disable_apparmor = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  systemd_cgroup = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$W/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "$W/runc"
        SystemdCgroup = false
EOF
  cat >"$W/cni/10-$BRIDGE.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "declserve-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$W/cni-ipam"
      }
    }
  ]
}
EOF
  # Pods with dnsPolicy Default (and kubelet's search list) see only the cluster DNS.
  echo "nameserver $NODE_IP" >"$W/resolv.conf"
  cat >"$W/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
failSwapOn: false
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $P_KUBELET_HEALTHZ
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $W/pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $W/pki/kubelet.crt
tlsPrivateKeyFile: $W/pki/kubelet.key
containerRuntimeEndpoint: unix://$W/containerd/containerd.sock
podLogsDir: $W/pod-logs
clusterDNS: [$NODE_IP]
clusterDomain: cluster.local
resolvConf: $W/resolv.conf
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%}
syncFrequency: 10s
EOF
  cat >"$W/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
hostnameOverride: $NODE
clusterCIDR: $CLUSTER_CIDR
healthzBindAddress: 127.0.0.1:$P_PROXY_HEALTHZ
metricsBindAddress: 127.0.0.1:$P_PROXY_METRICS
nodePortAddresses: ["127.0.0.0/8"]
iptables:
  localhostNodePorts: true
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
clientConnection:
  kubeconfig: $W/proxy.kubeconfig
EOF
  cat >"$W/Corefile" <<EOF
cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {
    bind $NODE_IP
    errors
    health 127.0.0.1:$P_DNS_HEALTH
    ready 127.0.0.1:$P_DNS_READY
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $W/coredns.kubeconfig
        pods insecure
        ttl 5
    }
    cache 5
}
EOF
}

coredns_rbac() {
  kc apply -f - >/dev/null <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "declserve:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "declserve:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "declserve:coredns"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: system:declserve-coredns}
EOF
}

images_to_import() {
  echo "$PAUSE_IMAGE"
  local img
  for img in declserve/tfserving-double:latest declserve/logproxy:latest ${DECLSERVE_CLUSTER_IMAGES:-}; do
    echo "$img"
  done
}

import_images() { # docker save | ctr import, only when the Docker image ID changed
  local sock="$W/containerd/containerd.sock" img id stamp tags
  mkdir -p "$CL/imported"
  # the list first: `ctr ... | grep -q` would fail under pipefail when grep exits early
  local have
  have=$(ctr -a "$sock" -n k8s.io images ls -q)
  while read -r img; do
    id=$(docker image inspect --format '{{.Id}}' "$img" 2>/dev/null) \
      || die "image $img is not in the Docker engine (build it: scripts/setup.sh test)"
    stamp="$CL/imported/$(echo "$img" | tr '/:' '__')"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$id" ] \
       && grep -qxF "docker.io/$img" <<<"$have"; then
      continue
    fi
    # every tag of that repository that points at the same image (e.g. :latest and :<hash>)
    tags=$(docker image ls --format '{{.Repository}}:{{.Tag}} {{.ID}}' "${img%:*}" \
      | awk -v id="${id#sha256:}" 'index(id, $2) == 1 {print $1}')
    say "importing $img into the cluster's containerd"
    # shellcheck disable=SC2086
    docker save $tags | ctr -a "$sock" -n k8s.io images import - >/dev/null
    echo "$id" >"$stamp"
  done < <(images_to_import)
}

node_ready() {
  [ "$(kc get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

# ---- commands -------------------------------------------------------------------------------

healthy() { # the recorded cluster runs and answers
  [ -f "$W/ports.env" ] && [ -f "$W/admin.kubeconfig" ] || return 1
  # shellcheck disable=SC1091
  source "$W/ports.env"
  local c
  for c in "${COMPONENTS[@]}"; do [ -n "$(pid_of "$c")" ] || return 1; done
  kc get --raw /readyz >/dev/null 2>&1 && node_ready
}

cmd_env() {
  load_paths
  healthy || die "no cluster running (start one: scripts/cluster.sh up)"
  echo "export KUBECONFIG=$W/admin.kubeconfig"
}

cmd_status() {
  load_paths
  local c pid
  for c in "${COMPONENTS[@]}"; do
    pid=$(pid_of "$c")
    if [ -n "$pid" ]; then printf '%-24s running (pid %s)\n' "$c" "$pid"; else printf '%-24s stopped\n' "$c"; fi
  done
}

cmd_up() {
  local t0=$SECONDS
  if ! bash "$REPO/testinfra/cluster/setup.sh" >"$CACHE/cluster-setup.log" 2>&1; then
    tail -n 30 "$CACHE/cluster-setup.log" >&2
    die "testinfra/cluster/setup.sh failed (log: $CACHE/cluster-setup.log)"
  fi
  load_paths
  if healthy; then
    say "reusing the running cluster"
    echo "export KUBECONFIG=$W/admin.kubeconfig"
    return 0
  fi
  if [ -d "$W" ]; then
    say "a previous cluster left state in $W: taking it down first"
    cmd_down
  fi
  ip link show "$BRIDGE" >/dev/null 2>&1 && die "a link named $BRIDGE exists already (not made by this script's state in $W)"
  mkdir -p "$W/logs" "$W/pids"
  save_host
  read -r P_ETCD P_ETCD_PEER P_APISERVER P_KCM P_SCHED P_KUBELET_HEALTHZ P_PROXY_HEALTHZ \
    P_PROXY_METRICS P_DNS_HEALTH P_DNS_READY <<<"$(free_ports 10)"
  for v in P_ETCD P_ETCD_PEER P_APISERVER P_KCM P_SCHED P_KUBELET_HEALTHZ P_PROXY_HEALTHZ \
      P_PROXY_METRICS P_DNS_HEALTH P_DNS_READY; do echo "$v=${!v}"; done >"$W/ports.env"
  make_pki
  write_configs

  # the node's address: kubelet refuses a loopback node IP; the CNI bridge plugin reuses it
  ip link add "$BRIDGE" type bridge
  ip addr add "$NODE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  forward_rule add
  make_cgroups

  local etcd_url="http://127.0.0.1:$P_ETCD"
  start etcd --name "$NODE" --data-dir "$W/etcd" \
    --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
    --listen-peer-urls "http://127.0.0.1:$P_ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$P_ETCD_PEER" \
    --initial-cluster "$NODE=http://127.0.0.1:$P_ETCD_PEER" --initial-cluster-state new \
    --unsafe-no-fsync=true --log-level warn
  # containerd meanwhile (independent of the control plane)
  start containerd --config "$W/containerd/config.toml" --log-level warn
  wait_for "etcd /health" curl -fsS --noproxy '*' --max-time 2 "$etcd_url/health"

  start kube-apiserver --etcd-servers="$etcd_url" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$P_APISERVER" \
    --tls-cert-file="$W/pki/apiserver.crt" --tls-private-key-file="$W/pki/apiserver.key" \
    --client-ca-file="$W/pki/ca.crt" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$W/pki/sa.pub" --service-account-signing-key-file="$W/pki/sa.key" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --token-auth-file="$W/pki/tokens.csv" \
    --kubelet-client-certificate="$W/pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$W/pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$W/pki/ca.crt" \
    --kubelet-preferred-address-types=InternalIP \
    --allow-privileged=true --endpoint-reconciler-type=none --profiling=false --v=1
  wait_for "kube-apiserver /readyz" kc get --raw /readyz
  coredns_rbac

  start kube-controller-manager --kubeconfig="$W/kcm.kubeconfig" \
    --authentication-kubeconfig="$W/kcm.kubeconfig" --authorization-kubeconfig="$W/kcm.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$P_KCM" \
    --use-service-account-credentials --service-account-private-key-file="$W/pki/sa.key" \
    --root-ca-file="$W/pki/ca.crt" \
    --cluster-signing-cert-file="$W/pki/ca.crt" --cluster-signing-key-file="$W/pki/ca.key" \
    --allocate-node-cidrs --cluster-cidr="$CLUSTER_CIDR" --node-cidr-mask-size=24 \
    --service-cluster-ip-range="$SERVICE_CIDR" --leader-elect=false --profiling=false --v=1
  start kube-scheduler --kubeconfig="$W/scheduler.kubeconfig" \
    --authentication-kubeconfig="$W/scheduler.kubeconfig" --authorization-kubeconfig="$W/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$P_SCHED" --leader-elect=false --profiling=false --v=1

  wait_for "containerd" ctr -a "$W/containerd/containerd.sock" version
  import_images
  start kubelet --config="$W/kubelet/config.yaml" --kubeconfig="$W/kubelet.kubeconfig" \
    --root-dir="$W/kubelet" --cert-dir="$W/kubelet/pki" --hostname-override="$NODE" \
    --node-ip="$NODE_IP" --v=1
  start kube-proxy --config="$W/kube-proxy.yaml" --v=1
  start coredns -conf "$W/Corefile" -dns.port 53
  wait_for "node $NODE Ready" node_ready
  wait_for "CoreDNS ready" curl -fsS --noproxy '*' --max-time 2 "http://127.0.0.1:$P_DNS_READY/ready"
  wait_for "cluster DNS to answer kubernetes.default.svc.cluster.local" \
    dns_answers kubernetes.default.svc.cluster.local
  wait_for "the default service account" kc -n default get serviceaccount default
  say "cluster up in $((SECONDS - t0)) s (node $NODE Ready, DNS answering); logs in $W/logs"
  echo "export KUBECONFIG=$W/admin.kubeconfig"
}

cmd_down() {
  load_paths
  [ -d "$W" ] || { say "no cluster state in $W: nothing to do"; return 0; }
  # shellcheck disable=SC1091
  [ -f "$W/ports.env" ] && source "$W/ports.env"
  local sock="$W/containerd/containerd.sock"
  stop coredns
  stop kube-proxy
  stop kube-scheduler
  stop kube-controller-manager
  stop kubelet
  # every pod container and sandbox of our containerd (never the Docker engine's)
  if [ -n "$(pid_of containerd)" ]; then
    local t c
    for t in $(ctr -a "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr -a "$sock" -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
    done
    for t in $(ctr -a "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      local i
      for ((i = 0; i < 100; i++)); do
        ctr -a "$sock" -n k8s.io tasks delete "$t" >/dev/null 2>&1 && break
        sleep 0.1 # poll interval: the task is still exiting
      done
    done
    for c in $(ctr -a "$sock" -n k8s.io containers ls -q 2>/dev/null); do
      ctr -a "$sock" -n k8s.io containers delete "$c" >/dev/null 2>&1 || true
    done
  fi
  stop containerd
  # shims of our containerd that outlived it
  local p
  for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $sock" || true); do
    kill -KILL "$p" 2>/dev/null || true
  done
  stop kube-apiserver
  stop etcd
  unmount_under "$W" "$CROOT"
  # veths left on the bridge, then the bridge
  for p in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$p" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  forward_rule del
  if [ -x "$KUBE_BIN/kube-proxy" ]; then
    "$KUBE_BIN/kube-proxy" --cleanup --config="$W/kube-proxy.yaml" >>"$W/logs/kube-proxy-cleanup.log" 2>&1 || true
  fi
  clean_iptables
  restore_sysctls
  remove_cgroups
  local path
  for path in $(printf '%s\n' "${HOST_PATHS[@]}" | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-); do
    [ -e "$path" ] || continue
    if [ -f "$W/saved/paths" ] && grep -qxF "$path" "$W/saved/paths"; then continue; fi
    rm -rf "$path"
  done
  rm -rf "$W"
  say "cluster down; host restored"
}

script_lock() { # one up/down at a time (test sessions of several checkouts share the cluster)
  mkdir -p "$CL"
  exec 7>"$CL/.script.lock"
  flock -w 1800 7 || die "another scripts/cluster.sh held $CL/.script.lock for 30 min"
}

case "${1:-}" in
  up) script_lock; cmd_up ;;
  down) script_lock; cmd_down ;;
  env) cmd_env ;;
  status) cmd_status ;;
  images) shift; script_lock; load_paths; healthy || die "no cluster is running"
    DECLSERVE_CLUSTER_IMAGES="${DECLSERVE_CLUSTER_IMAGES:-} $*" import_images ;;
  *) echo "usage: scripts/cluster.sh up | down | env | status | images IMAGE..." >&2; exit 2 ;;
esac
