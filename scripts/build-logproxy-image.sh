#!/usr/bin/env bash
# Build the inference-logging proxy image declserve/logproxy:<hash>, only when it is absent.
#
# <hash> is the first 12 hex digits of the SHA-256 of declserve/logproxy/proxy.py and
# declserve/logproxy/Dockerfile, so a changed proxy gets a new tag and an unchanged one is
# never rebuilt. The image is also tagged declserve/logproxy:latest. The base image
# declserve/base:bookworm is built first when missing (testinfra/images/build-base.sh).
# Nothing is pulled and the build runs without network.
#
# Usage: build-logproxy-image.sh [--force]     (--force: rebuild even when present)
# Last stdout line: the image reference.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/declserve/logproxy"
repo="declserve/logproxy"
base="declserve/base:bookworm"
force=0
[ "${1:-}" = "--force" ] && force=1

say() { printf 'build-logproxy: %s\n' "$*" >&2; }

hash="$(cat "$src/proxy.py" "$src/Dockerfile" | sha256sum | cut -c1-12)"
image="$repo:$hash"

bash "$root/testinfra/docker/ensure-dockerd.sh" >&2

if [ "$force" -eq 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
    say "$image is present"
    docker tag "$image" "$repo:latest"
    echo "$image"
    exit 0
fi

if ! docker image inspect "$base" >/dev/null 2>&1; then
    say "$base is missing; building it"
    bash "$root/testinfra/images/build-base.sh" >&2
fi

cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/declserve-test/images"
mkdir -p "$cache_dir"
# One builder at a time (other test sessions may build the same image at the same moment).
exec 9>"$cache_dir/.build-logproxy.lock"
flock -w 600 9 || { say "could not take the build lock"; exit 1; }
if [ "$force" -eq 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
    say "$image was built meanwhile"
    docker tag "$image" "$repo:latest"
    echo "$image"
    exit 0
fi

# A context holding exactly the two files, so nothing else in the tree can leak in.
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$src/proxy.py" "$src/Dockerfile" "$ctx/"
say "building $image"
docker build --quiet --network=none --pull=false \
    --label "io.declserve.content-hash=$hash" \
    -t "$image" -t "$repo:latest" "$ctx" >&2
echo "$image"
