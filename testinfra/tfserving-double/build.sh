#!/usr/bin/env bash
# Build declserve's TEST DOUBLE of TensorFlow Serving (not the real server; see README.md):
#   declserve/tfserving-double:<content hash>   and   declserve/tfserving-double:latest
# The base image declserve/base:bookworm is built first when absent (../images/build-base.sh),
# and the Docker engine started when it does not answer (../docker/ensure-dockerd.sh).
# Nothing is rebuilt when the image for the current content (this folder's Dockerfile,
# tensorflow_model_server, tf_serving_entrypoint.sh) exists and was built on the current base.
#
# Usage: build.sh [--force]
# The last stdout line is the image reference (declserve/tfserving-double:<hash>); progress
# and build output go to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="declserve/tfserving-double"
files=(Dockerfile tensorflow_model_server tf_serving_entrypoint.sh)
force=0
[ "${1:-}" = "--force" ] && force=1

say() { printf 'tfserving-double: %s\n' "$*" >&2; }

prepare_context() {
    chmod 0755 "$1/tensorflow_model_server" "$1/tf_serving_entrypoint.sh"
    mkdir "$1/models"
}

# shellcheck source=../images/build-on-base.sh
source "$here/../images/build-on-base.sh"
build_on_base "$repo" "$here" "$force" "${files[@]}"
