#!/usr/bin/env bash
# KServe's real controller (v0.20.0 `manager`, Standard mode) next to the running test cluster
# (scripts/cluster.sh), run out of cluster on this host with its webhooks on 127.0.0.1.
#
#   testinfra/kserve/run.sh up      build if needed (setup.sh), install, start; reuse a running one
#   testinfra/kserve/run.sh down    unregister the webhooks, stop the manager (CRDs etc. stay)
#   testinfra/kserve/run.sh status  one line; exit 0 only when the manager is healthy
#
# `up` builds the agent's image (KServe's logger/batcher sidecar, build-agent-image.sh) and
# imports it into the cluster; it installs, server-side with field manager
# declserve-testinfra: the CRDs; the namespace
# `kserve` (created when absent, never deleted) and ConfigMap inferenceservice-config there
# (Standard mode, no ingress); a CA and a serving certificate for IP:127.0.0.1; the manager on
# free 127.0.0.1 ports (metrics, health; the webhook server binds every interface, there is no
# host flag); once it is healthy the 1 mutating + 5 validating webhook configurations with
# url: https://127.0.0.1:<port>/<path> and the caBundle; the ClusterServingRuntime
# kserve-tensorflow-serving running the TensorFlow Serving test double (tensorflow-runtime.yaml).
# The last stdout line of `up` is `started <pid>` or `running <pid>` (already up: reused).
#
# `down` removes the webhook configurations before it stops the manager: with failurePolicy
# Fail, left pointing at a dead port they refuse every later InferenceService write (and the
# pods of InferenceServices). InferenceServices carry KServe's finalizer: delete them while
# the controller runs, or their namespace hangs in Terminating.
#
# State: ${DECLSERVE_TEST_CACHE:-~/.cache/declserve-test}/kserve/run (pid, ports, pki, log).
# KUBECONFIG: the running cluster's (`scripts/cluster.sh env`). Environment:
#   DECLSERVE_KSERVE_TIMEOUT  seconds `up` waits for each phase (default 120)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${DECLSERVE_TEST_CACHE:-$HOME/.cache/declserve-test}
W="$CACHE/kserve/run"
TIMEOUT=${DECLSERVE_KSERVE_TIMEOUT:-120}
NS=kserve
FM=declserve-testinfra
LABEL=declserve.io/testinfra=kserve

say() { printf '\033[1mkserve:\033[0m %s\n' "$*" >&2; }
die() { printf 'kserve: ERROR: %s\n' "$*" >&2; exit 1; }

cluster_env() {
  local line
  line=$(bash "$REPO/scripts/cluster.sh" env 2>/dev/null | tail -n1) \
    || die "no running cluster (start it with scripts/cluster.sh up)"
  [[ "$line" =~ ^export\ KUBECONFIG=(.+)$ ]] || die "unexpected output of scripts/cluster.sh env"
  export KUBECONFIG="${BASH_REMATCH[1]}"
}
kc() { /usr/bin/kubectl "$@"; }

load_paths() { eval "$(bash "$HERE/setup.sh" --print-env)"; }

pid_of() { # pid of the manager we started, or nothing
  local pid
  [ -f "$W/pid" ] || return 0
  pid=$(cat "$W/pid")
  [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *"$KSERVE_MANAGER"* ]] && echo "$pid"
  return 0
}

healthy() { # the manager answers its readiness probe and serves TLS with our CA on the webhook port
  # shellcheck disable=SC1091
  . "$W/ports.env"
  curl -fsS --noproxy '*' --max-time 3 "http://127.0.0.1:$P_HEALTH/readyz" >/dev/null \
    && curl -sS --noproxy '*' --max-time 3 --cacert "$W/pki/ca.crt" -o /dev/null \
      "https://127.0.0.1:$P_WEBHOOK/healthz"
}

wait_for() { # description, command...: poll until it succeeds or TIMEOUT; check the manager
  local what=$1; shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if [ -f "$W/pid" ] && [ -z "$(pid_of)" ]; then
      tail -n 30 "$W/manager.log" >&2 || true
      die "the manager exited while waiting for $what (log: $W/manager.log)"
    fi
    [ $SECONDS -lt $deadline ] || die "timed out after ${TIMEOUT}s waiting for $what"
    sleep 0.2 # poll interval, bounded by the deadline
  done
}

free_ports() { # n: free TCP ports (bound on every interface: the webhook server binds them all)
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

make_pki() { # CA + serving certificate for IP:127.0.0.1, kept while valid for another day
  local p="$W/pki"
  if [ -f "$p/tls.crt" ] && openssl x509 -in "$p/tls.crt" -noout -checkend 86400 >/dev/null; then
    return 0
  fi
  rm -rf "$p" && mkdir -p "$p" && chmod 700 "$p"
  openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=declserve-kserve-webhook-ca" \
    -keyout "$p/ca.key" -out "$p/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$p/tls.key" -out "$p/tls.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n' \
    >"$p/ext.cnf"
  openssl x509 -req -in "$p/tls.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
    -days 365 -extfile "$p/ext.cnf" -out "$p/tls.crt" 2>/dev/null
}

install_cluster_objects() {
  local m=$KSERVE_MANIFESTS
  kc apply --server-side --force-conflicts --field-manager="$FM" -f "$m/crd/" >/dev/null
  # right after the apply `kubectl wait` fails on CRDs that have no conditions yet
  wait_for "the CRDs to be established" kc wait --for=condition=Established --timeout=10s -f "$m/crd/"
  kc get namespace "$NS" >/dev/null 2>&1 || kc create namespace "$NS" >/dev/null
  apply_configmap
}

apply_configmap() { # inferenceservice-config, naming the agent image in the cluster
  python3 "$HERE/render.py" configmap "$KSERVE_MANIFESTS/inferenceservice.yaml" "$AGENT_IMAGE" \
    | kc apply --server-side --force-conflicts --field-manager="$FM" -f - >/dev/null
}

agent_image() { # build the agent's image (cached) and import it into the cluster's containerd
  local ref
  ref=$(bash "$HERE/build-agent-image.sh" | tail -n1)
  bash "$REPO/scripts/cluster.sh" images "$ref" >&2
  echo "$ref"
}

register_webhooks() {
  # shellcheck disable=SC1091
  . "$W/ports.env"
  python3 "$HERE/render.py" webhooks "$KSERVE_MANIFESTS/webhook.yaml" "$P_WEBHOOK" "$W/pki/ca.crt" \
    >"$W/webhooks.yaml"
  kc apply --server-side --force-conflicts --field-manager="$FM" -f "$W/webhooks.yaml" >/dev/null
}

unregister_webhooks() {
  kc delete mutatingwebhookconfigurations,validatingwebhookconfigurations -l "$LABEL" \
    --ignore-not-found --wait=true >/dev/null
}

cmd_up() {
  bash "$HERE/setup.sh"
  load_paths
  cluster_env
  mkdir -p "$W"
  exec 7>"$W/.lock"   # one up/down at a time
  flock 7
  local pid
  AGENT_IMAGE=$(agent_image)
  pid=$(pid_of)
  if [ -n "$pid" ] && healthy; then
    register_webhooks   # cheap, and repairs a configuration someone removed
    apply_configmap
    kc apply --server-side --force-conflicts --field-manager="$FM" -f "$HERE/tensorflow-runtime.yaml" >/dev/null
    say "already running (pid $pid)"
    echo "running $pid"
    return 0
  fi
  [ -z "$pid" ] || { say "manager $pid unhealthy: restarting"; stop_manager; }
  # webhooks left by a manager that died would block the runtime's and InferenceServices' writes
  unregister_webhooks
  local t0=$SECONDS
  install_cluster_objects
  make_pki
  local certs="$W/tmp/k8s-webhook-server/serving-certs"
  mkdir -p "$certs"
  cp "$W/pki/tls.crt" "$W/pki/tls.key" "$W/pki/ca.crt" "$certs/"
  local P_METRICS P_HEALTH P_WEBHOOK
  read -r P_METRICS P_HEALTH P_WEBHOOK <<<"$(free_ports 3)"
  printf 'P_METRICS=%s\nP_HEALTH=%s\nP_WEBHOOK=%s\n' "$P_METRICS" "$P_HEALTH" "$P_WEBHOOK" >"$W/ports.env"
  # TMPDIR: controller-runtime reads the serving certificate from $TMPDIR/k8s-webhook-server/...
  # 7>&-: the manager must not inherit (and so hold) this script's lock
  TMPDIR="$W/tmp" POD_NAMESPACE=$NS setsid "$KSERVE_MANAGER" \
    --metrics-addr="127.0.0.1:$P_METRICS" --health-probe-addr="127.0.0.1:$P_HEALTH" \
    --webhook-port="$P_WEBHOOK" --leader-elect=false \
    >>"$W/manager.log" 2>&1 </dev/null 7>&- &
  echo $! >"$W/pid"
  wait_for "the manager to be healthy" healthy
  register_webhooks
  kc apply --server-side --force-conflicts --field-manager="$FM" -f "$HERE/tensorflow-runtime.yaml" >/dev/null
  say "manager $(cat "$W/pid") healthy in $((SECONDS - t0)) s: metrics 127.0.0.1:$P_METRICS, health 127.0.0.1:$P_HEALTH, webhooks https://127.0.0.1:$P_WEBHOOK (log: $W/manager.log)"
  echo "started $(cat "$W/pid")"
}

stop_manager() { # SIGTERM, then SIGKILL after 20 s
  local pid i
  pid=$(pid_of)
  [ -n "$pid" ] || { rm -f "$W/pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  if [ -d "/proc/$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
  for ((i = 0; i < 100; i++)); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  rm -f "$W/pid"
}

cmd_down() {
  load_paths
  mkdir -p "$W"
  exec 7>"$W/.lock"
  flock 7
  if cluster_env_quiet; then unregister_webhooks; else say "no running cluster: only stopping the manager"; fi
  stop_manager
  say "down (CRDs, namespace $NS, its ConfigMap and the runtime stay)"
}

cluster_env_quiet() { (cluster_env) >/dev/null 2>&1 && cluster_env; }

cmd_status() {
  load_paths
  local pid hooks=?
  pid=$(pid_of)
  if cluster_env_quiet; then
    hooks=$(kc get mutatingwebhookconfigurations,validatingwebhookconfigurations -l "$LABEL" -o name 2>/dev/null | wc -l)
  fi
  if [ -n "$pid" ] && healthy 2>/dev/null; then
    # shellcheck disable=SC1091
    . "$W/ports.env"
    echo "manager: running pid $pid (kserve $KSERVE_VERSION), health 127.0.0.1:$P_HEALTH, webhooks 127.0.0.1:$P_WEBHOOK; webhook configurations: $hooks"
  elif [ -n "$pid" ]; then
    echo "manager: pid $pid not healthy; webhook configurations: $hooks"; return 1
  else
    echo "manager: stopped; webhook configurations: $hooks"; return 1
  fi
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) die "usage: run.sh up|down|status" ;;
esac
