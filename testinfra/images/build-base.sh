#!/usr/bin/env bash
# Build the local base image declserve/base:bookworm, only when it is absent.
#
# There is no image registry here, so the base image is made from scratch: a
# Debian bookworm "minbase" root file system made by mmdebstrap (python3;
# python3-aiohttp and python3-confluent-kafka for declserve's front proxy
# built FROM this base; ca-certificates), then `docker import`ed.
#
# The root file system tarball is cached under
#   ${XDG_CACHE_HOME:-~/.cache}/declserve-test/images/
# keyed by a hash of everything that shapes it, so after an engine wipe the
# re-import takes seconds. Packages come from the machine's own apt sources
# (the Debian entries of /etc/apt/sources.list{,.d/*}), read at run time.
#
# An image built from another package list (its io.declserve.rootfs label names
# another tarball) is rebuilt; the old image is left alone (only re-tagged away).
#
# Usage: build-base.sh [--force]    (--force: re-import even when present)
# Last stdout line: the image reference.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
image="declserve/base:bookworm"
suite="bookworm"
includes="python3,python3-aiohttp,python3-confluent-kafka,ca-certificates"
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/declserve-test/images"
force=0
[ "${1:-}" = "--force" ] && force=1

say() { printf 'build-base: %s\n' "$*" >&2; }

"$here/../docker/ensure-dockerd.sh"

# Keep the image small: no documentation, manual pages or translations.
dpkg_opts=(
    'path-exclude=/usr/share/man/*'
    'path-exclude=/usr/share/doc/*'
    'path-include=/usr/share/doc/*/copyright'
    'path-exclude=/usr/share/info/*'
    'path-exclude=/usr/share/locale/*'
    'path-exclude=/usr/share/lintian/*'
)
mm_args=(--variant=minbase --include="$includes" --format=tar)
# Merged /usr made by mmdebstrap itself (installs usr-is-merged), instead of
# the usrmerge package, which would pull in ~45 MB of perl.
mm_args+=(--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr)
for o in "${dpkg_opts[@]}"; do mm_args+=(--dpkgopt="$o"); done
# (mmdebstrap leaves no apt lists or package caches behind by default.
# Python's byte-code caches stay: they make every container start faster.)

key="$(printf '%s\n' "$suite" "${mm_args[@]}" "rootfs-v1" | sha256sum | cut -c1-16)"
tarball="$cache_dir/$suite-minbase-$key.tar"

current() {
    # The image exists and was imported from this very root file system.
    [ "$(docker image inspect --format '{{index .Config.Labels "io.declserve.rootfs"}}' \
        "$image" 2>/dev/null || true)" = "$(basename "$tarball")" ]
}

if [ "$force" -eq 0 ] && current; then
    say "$image is present"
    echo "$image"
    exit 0
fi

mkdir -p "$cache_dir"
# One builder at a time (other test sessions may build at the same moment).
exec 9>"$cache_dir/.build-base.lock"
flock -w 1800 9 || { say "could not take the build lock"; exit 1; }
if [ "$force" -eq 0 ] && current; then
    say "$image was built meanwhile"
    echo "$image"
    exit 0
fi

debian_sources() {
    # Write the Debian entries for $suite from the host's apt sources to $1
    # (deb822 .sources and one-line .list files). Prints nothing when none.
    python3 - "$suite" "$1" <<'PY'
import glob, re, sys
suite, out = sys.argv[1], sys.argv[2]
files = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")) \
    + sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))
lines = []
for path in files:
    try:
        text = open(path, encoding="utf-8").read()
    except OSError:
        continue
    if path.endswith(".sources"):
        for stanza in re.split(r"\n\s*\n", text):
            fields, last = {}, None
            for raw in stanza.splitlines():
                if raw.startswith("#") or not raw.strip():
                    continue
                if raw[0].isspace() and last:
                    fields[last] += " " + raw.strip()
                    continue
                k, _, v = raw.partition(":")
                last = k.strip().lower()
                fields[last] = v.strip()
            if fields.get("enabled", "yes").lower() == "no":
                continue
            if "deb" not in fields.get("types", "").split():
                continue
            suites = [s for s in fields.get("suites", "").split()
                      if s == suite or s.startswith(suite + "-")]
            if not suites:
                continue
            comps = fields.get("components", "main")
            opts = f" [signed-by={fields['signed-by']}]" if fields.get("signed-by", "").startswith("/") else ""
            for uri in fields.get("uris", "").split():
                for s in suites:
                    lines.append(f"deb{opts} {uri} {s} {comps}")
    else:
        for raw in text.splitlines():
            raw = raw.split("#", 1)[0].strip()
            parts = raw.split()
            if len(parts) < 3 or parts[0] != "deb":
                continue
            i = 1
            if parts[1].startswith("["):
                while i < len(parts) and not parts[i].endswith("]"):
                    i += 1
                i += 1
            if i + 1 < len(parts) and (parts[i + 1] == suite or parts[i + 1].startswith(suite + "-")):
                lines.append(raw)
if lines:
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
PY
}

if [ ! -s "$tarball" ]; then
    if ! command -v mmdebstrap >/dev/null 2>&1; then
        say "installing mmdebstrap"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
    fi
    work="$(mktemp -d "$cache_dir/.work.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    mirrors=()
    debian_sources "$work/sources.list"
    if [ -s "$work/sources.list" ]; then
        mirrors=("$work/sources.list")
    else
        say "no Debian $suite entries in the host's apt sources; using mmdebstrap's default"
    fi
    say "making the $suite minbase root file system (mmdebstrap; about a minute)"
    start=$(date +%s)
    mmdebstrap --quiet "${mm_args[@]}" "$suite" "$work/rootfs.tar" "${mirrors[@]}"
    mv "$work/rootfs.tar" "$tarball"
    say "root file system made in $(( $(date +%s) - start ))s: $tarball ($(du -h "$tarball" | cut -f1))"
    # Older tarballs (other keys) are of no further use.
    find "$cache_dir" -maxdepth 1 -name "$suite-minbase-*.tar" ! -name "$(basename "$tarball")" -delete
else
    say "using the cached root file system $tarball"
fi

say "importing $tarball as $image"
docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --change "LABEL io.declserve.rootfs=$(basename "$tarball")" \
    --message "declserve test base: Debian $suite minbase + $includes" \
    "$tarball" "$image" >/dev/null
say "$image: $(docker image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')"
echo "$image"
