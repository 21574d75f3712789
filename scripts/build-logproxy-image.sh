#!/usr/bin/env bash
# Build the inference-logging proxy image  declserve/logproxy:<hash>  (and :latest), only when
# it is absent or was built on another base image.
#
# <hash> is the first 12 hex digits of the SHA-256 of declserve/logproxy/proxy.py followed by
# declserve/logproxy/Dockerfile, so a changed proxy gets a new tag and an unchanged one is not
# rebuilt. The base image declserve/base:bookworm is built first when it is missing
# (testinfra/images/build-base.sh; a no-op when present). Nothing is pulled and the build
# runs without network (the Dockerfile only COPYs).
#
# Usage: build-logproxy-image.sh [--force]     (--force: rebuild even when up to date)
# The last stdout line is the image reference; progress and build output go to stderr.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/declserve/logproxy"
repo="declserve/logproxy"
base="declserve/base:bookworm"
files=(proxy.py Dockerfile)
force=0
[ "${1:-}" = "--force" ] && force=1

say() { printf 'build-logproxy: %s\n' "$*" >&2; }

# Starts the engine when it does not answer, builds the base image only when it is missing.
bash "$root/testinfra/images/build-base.sh" >&2

base_id="$(docker image inspect --format '{{.Id}}' "$base")"
hash="$(cd "$src" && cat "${files[@]}" | sha256sum | cut -c1-12)"
image="$repo:$hash"

up_to_date() {
    [ "$(docker image inspect --format '{{index .Config.Labels "io.declserve.base-id"}}' \
        "$image" 2>/dev/null || true)" = "$base_id" ]
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
# One builder at a time (other test sessions may build the same image at the same moment).
exec 9>"$cache_dir/.build-logproxy.lock"
flock -w 600 9 || { say "could not take the build lock"; exit 1; }
if [ "$force" -eq 0 ] && up_to_date; then
    point_latest
    say "$image was built meanwhile"
    echo "$image"
    exit 0
fi

# A context holding exactly these files, so nothing else in the tree can leak into the image.
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
for f in "${files[@]}"; do cp "$src/$f" "$context/$f"; done
say "building $image on $base"
docker build --quiet --network=none --pull=false \
    --label "io.declserve.content-hash=$hash" \
    --label "io.declserve.base-id=$base_id" \
    -t "$image" "$context" >&2
point_latest
say "$image built"
echo "$image"
