#!/usr/bin/env bash
# Build the image transformer scripts of `tool: kserve` servings run in,
# declserve/kserve-transformer:<hash> (and :latest): KServe's Python model server from PyPI on
# the local base image. Only when it is absent or was built on another base image.
#
# <hash> covers declserve/transformer/{Dockerfile,requirements.txt}. pip installs the
# requirements on this host for the image's Python (CPython 3.11, manylinux wheels only) into a
# cached folder (~/.cache/declserve-test/transformer/site-<hash>, about 400 MB, made once);
# the docker build copies it and runs without network. Nothing is pulled.
#
# Usage: build-transformer-image.sh [--force]
# The last stdout line is the image reference; progress goes to stderr.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="declserve/kserve-transformer"
files=(declserve/transformer/Dockerfile declserve/transformer/requirements.txt)
force=0
[ "${1:-}" = "--force" ] && force=1
cache="${XDG_CACHE_HOME:-$HOME/.cache}/declserve-test/transformer"
pip=${DECLSERVE_PIP:-$root/.venv/bin/pip}

say() { printf 'build-transformer: %s\n' "$*" >&2; }

site_dir() {
    local hash
    hash="$(cat "$root/declserve/transformer/requirements.txt" | sha256sum | cut -c1-12)"
    echo "$cache/site-$hash"
}

ensure_site() { # the installed packages, made once per requirements file
    local site tmp
    site="$(site_dir)"
    [ -f "$site/.complete" ] && return 0
    mkdir -p "$cache"
    tmp="$(mktemp -d "$cache/.site.XXXXXX")"
    say "installing $(grep -v '^#' "$root/declserve/transformer/requirements.txt" | xargs) for the image's CPython 3.11 (once)"
    "$pip" install --quiet --disable-pip-version-check --no-compile --target "$tmp" \
        --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform linux_x86_64 \
        --cache-dir "$cache/pip" -r "$root/declserve/transformer/requirements.txt" >&2
    touch "$tmp/.complete"
    rm -rf "$site"
    mv "$tmp" "$site"
}

prepare_context() {
    ensure_site
    cp -a "$(site_dir)" "$1/site"
}

# shellcheck source=../testinfra/images/build-on-base.sh
source "$root/testinfra/images/build-on-base.sh"
build_on_base "$repo" "$root" "$force" "${files[@]}"
