#!/usr/bin/env bash
# The image of KServe's agent, declserve/kserve-agent:<hash> (hash of this Dockerfile and the
# binary setup.sh built), on declserve/base:bookworm; built only when absent. The last stdout
# line is the image reference.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
say() { printf 'build-agent-image: %s\n' "$*" >&2; }
bash "$HERE/setup.sh" >&2
eval "$(bash "$HERE/setup.sh" --print-env)"
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
cp "$HERE/agent.Dockerfile" "$src/Dockerfile"
cp "$KSERVE_AGENT" "$src/agent"
# shellcheck source=../images/build-on-base.sh
source "$HERE/../images/build-on-base.sh"
build_on_base declserve/kserve-agent "$src" 0 Dockerfile agent
