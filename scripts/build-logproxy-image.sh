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
files=(proxy.py Dockerfile)
force=0
[ "${1:-}" = "--force" ] && force=1

say() { printf 'build-logproxy: %s\n' "$*" >&2; }

# shellcheck source=../testinfra/images/build-on-base.sh
source "$root/testinfra/images/build-on-base.sh"
build_on_base "$repo" "$src" "$force" "${files[@]}"
