#!/usr/bin/env bash
# Install everything declserve needs on a Debian machine, idempotently, as root.
#
#   scripts/setup.sh demo   Python venv with declserve, a running Docker engine, the
#                           TensorFlow Serving double image when tensorflow/serving is absent
#   scripts/setup.sh test   all of the above plus the test servers: the Kafka broker's jars,
#                           the Kubernetes API server binaries, the single-node cluster's
#                           parts, KServe's controller and the transformer image (built once,
#                           cached)
#
# Heavy downloads and builds are cached under ~/.cache/declserve-test/, so a second run is fast.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-demo}"
say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

apt_updated=""
apt_install() {
    if [ -z "$apt_updated" ]; then apt-get update -q >/dev/null; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# Debian packages the project's own scripts call.
missing=()
command -v python3 >/dev/null || missing+=(python3)
command -v curl >/dev/null || missing+=(curl)
command -v flock >/dev/null || missing+=(util-linux)
command -v openssl >/dev/null || missing+=(openssl)
command -v git >/dev/null || missing+=(git)
if [ ${#missing[@]} -gt 0 ]; then say "installing ${missing[*]}"; apt_install "${missing[@]}"; fi

# The Python environment: a venv in the checkout, so the system Python stays untouched.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys' 2>/dev/null; then
    say "creating .venv"
    rm -rf .venv
    if ! python3 -m venv .venv 2>/dev/null; then
        rm -rf .venv
        apt_install python3-venv python3-pip
        python3 -m venv .venv
    fi
fi
stamp=".venv/.declserve-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    say "installing declserve and its Python dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e '.[test]'
    touch "$stamp"
fi

say "making sure a Docker engine runs"
bash testinfra/docker/ensure-dockerd.sh

say "building the TensorFlow Serving double image (cached)"
bash testinfra/tfserving-double/build.sh >/dev/null

say "building declserve's inference-logging proxy image (cached)"
bash scripts/build-logproxy-image.sh >/dev/null

if [ "$what" = "test" ]; then
    say "fetching the Kafka broker (cached)"
    bash testinfra/kafka/setup.sh
    say "building etcd and kube-apiserver (cached; the first build takes a while)"
    bash testinfra/kube/setup.sh
    say "installing and building the single-node cluster's parts (cached; scripts/cluster.sh)"
    bash testinfra/cluster/setup.sh
    say "building KServe's controller from its Go module (cached; the first build takes a while)"
    bash testinfra/kserve/setup.sh
    say "building the KServe transformer image (cached; pip installs kserve once)"
    bash scripts/build-transformer-image.sh >/dev/null
fi
say "ready"
