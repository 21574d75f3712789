# Sourced by the image build scripts (the TensorFlow Serving double, the logging proxy): builds
# REPO:<content hash> FROM declserve/base:bookworm, only when that image is absent or was built
# on another base, and points REPO:latest at it. Nothing is pulled; the build has no network.
#
#   build_on_base REPO SRC_DIR FORCE(0|1) FILE...    (FILE: a path relative to SRC_DIR)
#
# Before calling, define `say` (progress to stderr) and optionally `prepare_context DIR` (runs
# after the files are copied into the build context). The image reference is printed last on
# stdout.

build_on_base() {
    local repo="$1" src="$2" force="$3"
    shift 3
    local files=("$@") base="declserve/base:bookworm" images_dir
    images_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    # Starts the engine when it does not answer, builds the base image only when it is missing.
    bash "$images_dir/build-base.sh" >&2

    local base_id hash image
    base_id="$(docker image inspect --format '{{.Id}}' "$base")"
    hash="$(cd "$src" && cat "${files[@]}" | sha256sum | cut -c1-12)"
    image="$repo:$hash"

    _up_to_date() {
        [ "$(docker image inspect --format '{{index .Config.Labels "io.declserve.base-id"}}' \
            "$image" 2>/dev/null || true)" = "$base_id" ]
    }
    _point_latest() {
        if [ "$(docker image inspect --format '{{.Id}}' "$repo:latest" 2>/dev/null || true)" != \
             "$(docker image inspect --format '{{.Id}}' "$image")" ]; then
            docker tag "$image" "$repo:latest"
        fi
    }

    if [ "$force" -eq 0 ] && _up_to_date; then
        _point_latest; say "$image is up to date"; echo "$image"; return 0
    fi
    local cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/declserve-test/images"
    mkdir -p "$cache_dir"
    # One builder at a time: other test sessions may build the same image at the same moment.
    exec 9>"$cache_dir/.build-${repo//\//-}.lock"
    flock -w 900 9 || { say "could not take the build lock"; return 1; }
    if [ "$force" -eq 0 ] && _up_to_date; then
        _point_latest; say "$image was built meanwhile"; echo "$image"; return 0
    fi

    # A context holding exactly these files, so nothing else in the tree can leak into the image.
    # Global, not local: the EXIT trap runs after this function has returned.
    _build_context="$(mktemp -d)"
    trap 'rm -rf "$_build_context"' EXIT
    local f context="$_build_context"
    # Flat: each file at the top of the context under its own name (FILE may be a path under
    # SRC_DIR; the hash covers the files in the order given).
    for f in "${files[@]}"; do cp "$src/$f" "$context/$(basename "$f")"; done
    if declare -F prepare_context >/dev/null; then prepare_context "$context"; fi
    say "building $image on $base"
    # The legacy builder takes FROM from local images without asking any registry.
    DOCKER_BUILDKIT=0 docker build --quiet --network=none \
        --label "io.declserve.content-hash=$hash" \
        --label "io.declserve.base-id=$base_id" \
        -t "$image" "$context" >&2
    _point_latest
    say "$image built"
    # Earlier :<hash> tags are left alone: another test session may still hold such a reference.
    echo "$image"
}
