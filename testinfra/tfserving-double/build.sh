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
base="declserve/base:bookworm"
files=(Dockerfile tensorflow_model_server tf_serving_entrypoint.sh)
force=0
[ "${1:-}" = "--force" ] && force=1

say() { printf 'tfserving-double: %s\n' "$*" >&2; }

"$here/../images/build-base.sh" >/dev/null

base_id="$(docker image inspect --format '{{.Id}}' "$base")"
hash="$(cd "$here" && cat "${files[@]}" | sha256sum | cut -c1-12)"
image="$repo:$hash"

up_to_date() {
    [ "$(docker image inspect --format '{{index .Config.Labels "io.declserve.base-id"}}' "$image" 2>/dev/null || true)" = "$base_id" ]
}

point_latest() {
    if [ "$(docker image inspect --format '{{.Id}}' "$repo:latest" 2>/dev/null || true)" != \
         "$(docker image inspect --format '{{.Id}}' "$image")" ]; then
        docker tag "$image" "$repo:latest"
    fi
}

if [ "$force" -eq 0 ] && up_to_date; then
    point_latest
    say "$image is up to date"
    echo "$image"
    exit 0
fi

cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/declserve-test/images"
mkdir -p "$cache_dir"
exec 9>"$cache_dir/.build-tfserving-double.lock"
flock -w 900 9 || { say "could not take the build lock"; exit 1; }
if [ "$force" -eq 0 ] && up_to_date; then
    point_latest
    say "$image was built meanwhile"
    echo "$image"
    exit 0
fi

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
for f in "${files[@]}"; do cp "$here/$f" "$context/$f"; done
chmod 0755 "$context/tensorflow_model_server" "$context/tf_serving_entrypoint.sh"
mkdir "$context/models"

say "building $image on $base"
start_ms=$(( $(date +%s%N) / 1000000 ))
# The legacy builder uses local images for FROM without asking any registry; the build runs
# no commands, so it needs no network either.
DOCKER_BUILDKIT=0 docker build --network=none --quiet \
    --label "io.declserve.base-id=$base_id" \
    --label "io.declserve.content-hash=$hash" \
    -t "$image" "$context" >&2
docker tag "$image" "$repo:latest"
elapsed_ms=$(( $(date +%s%N) / 1000000 - start_ms ))
say "built $image in $((elapsed_ms / 1000)).$(printf '%03d' $((elapsed_ms % 1000)))s"
# Earlier :<hash> tags are left alone: a test session elsewhere may hold such a reference
# and create containers from it later (they share all but a few kB with this image).
echo "$image"
