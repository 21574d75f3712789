#!/usr/bin/env bash
# Build declserve's front proxy image  declserve/logproxy:<hash>  (and :latest), only when it
# is absent or was built on another base image.
#
# <hash> is the first 12 hex digits of the SHA-256 of declserve/logproxy/proxy.py,
# declserve/logproxy/sink.py (the logging sink for KServe servings), declserve/logproxy/Dockerfile
# and declserve/backends/tfserving.py (the one module of declserve the proxy imports), so a
# changed proxy or sink gets a new tag and an unchanged one is not rebuilt. The base image declserve/base:bookworm is built first when it is missing or
# outdated (testinfra/images/build-base.sh; a no-op when current). Nothing is pulled and the
# build runs without network (the Dockerfile only COPYs).
#
# Usage: build-logproxy-image.sh [--force]     (--force: rebuild even when up to date)
# The last stdout line is the image reference; progress and build output go to stderr.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="declserve/logproxy"
files=(declserve/logproxy/proxy.py declserve/logproxy/sink.py declserve/logproxy/Dockerfile
       declserve/backends/tfserving.py)
force=0
[ "${1:-}" = "--force" ] && force=1

say() { printf 'build-logproxy: %s\n' "$*" >&2; }

prepare_context() {
    # /app/declserve/backends/tfserving.py in the image, importable as declserve.backends.tfserving
    local pkg="$1/pkg/declserve/backends"
    mkdir -p "$pkg"
    mv "$1/tfserving.py" "$pkg/tfserving.py"
    for init in "$1/pkg/declserve/__init__.py" "$pkg/__init__.py"; do
        echo '"""Only declserve.backends.tfserving is in the front proxy image."""' > "$init"
    done
}

# shellcheck source=../testinfra/images/build-on-base.sh
source "$root/testinfra/images/build-on-base.sh"
build_on_base "$repo" "$root" "$force" "${files[@]}"
