#!/usr/bin/env bash
# Make sure a local Docker engine answers; idempotent, safe to run many times.
#
#  * installs Debian's docker.io when dockerd is missing (one apt-get update,
#    then apt-get install);
#  * when `docker info` fails, starts the engine: `systemctl start docker` when
#    systemd is PID 1, otherwise `dockerd` in the background (own session, so
#    it outlives the caller), logging to /var/log/declserve-dockerd.log;
#  * polls `docker info` until the engine answers or the deadline passes.
#
# Environment:
#   DOCKERD_TIMEOUT   seconds to wait for the engine (default 60)
#   DOCKERD_LOG       log file of a dockerd started here
#                     (default /var/log/declserve-dockerd.log)
# Exit status: 0 when the engine answers, 1 otherwise (with the log's tail).
set -euo pipefail

timeout_s="${DOCKERD_TIMEOUT:-60}"
log_file="${DOCKERD_LOG:-/var/log/declserve-dockerd.log}"

say() { printf 'ensure-dockerd: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

engine_answers() {
    docker info >/dev/null 2>&1
}

if command -v docker >/dev/null 2>&1 && engine_answers; then
    exit 0
fi

# Serialise concurrent callers (several test sessions, CI and a developer may
# call this at the same moment); the second caller then only waits.
lock_file=/run/declserve-ensure-dockerd.lock
[ -w /run ] || lock_file="${TMPDIR:-/tmp}/declserve-ensure-dockerd.lock"
exec 9>"$lock_file"
if command -v flock >/dev/null 2>&1; then
    flock -w "$((timeout_s + 600))" 9 || { say "could not take $lock_file"; exit 1; }
fi

if command -v docker >/dev/null 2>&1 && engine_answers; then
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    say "dockerd or docker is missing: installing Debian's docker.io"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi

dockerd_pid() {
    # pid of a live dockerd, if any (pid file first, then the process table)
    local pid=""
    if [ -r /var/run/docker.pid ]; then
        pid="$(cat /var/run/docker.pid 2>/dev/null || true)"
        if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "dockerd" ]; then
            echo "$pid"
            return 0
        fi
    fi
    if command -v pgrep >/dev/null 2>&1; then
        pgrep -x dockerd 2>/dev/null | head -n1 || true
    fi
}

if [ "$(cat /proc/1/comm 2>/dev/null || true)" = "systemd" ] && [ -d /run/systemd/system ]; then
    say "starting docker with systemctl"
    as_root systemctl start docker
elif [ -n "$(dockerd_pid)" ]; then
    say "dockerd (pid $(dockerd_pid)) is running but not answering yet; waiting"
else
    say "starting dockerd in the background (log: $log_file)"
    as_root mkdir -p "$(dirname "$log_file")"
    # A stale pid file from a killed engine makes dockerd refuse to start.
    as_root rm -f /var/run/docker.pid
    # setsid -f: forked into its own session and process group, so stopping
    # the caller's job (a test run, a CI step) does not stop the engine. Close
    # fd 9 (the lock) for it, or the engine would hold the lock forever.
    as_root setsid -f dockerd >>"$log_file" 2>&1 </dev/null 9>&-
fi

deadline=$(( $(date +%s) + timeout_s ))
while ! engine_answers; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        say "the Docker engine did not answer within ${timeout_s}s"
        if [ -r "$log_file" ]; then
            say "last lines of $log_file:"
            tail -n 20 "$log_file" >&2 || true
        fi
        exit 1
    fi
    sleep 0.5
done
say "the Docker engine answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
