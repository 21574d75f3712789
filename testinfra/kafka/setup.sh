#!/usr/bin/env bash
# Install the jars of the Kafka test broker (KRaft, single node) into
#   ${DECLSERVE_TEST_CACHE:-~/.cache/declserve-test}/kafka/<kafka-version>/libs/
# Idempotent: does nothing when that directory is complete. Prints the libs path last.
#
# The Kafka version is the <kafka.version> property of pom.xml beside this script.
# Maven's local repository is kept in <cache>/m2 (not ~/.m2) so that everything the test
# infrastructure downloads lives under one directory that CI can cache or delete as a unit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM="$HERE/pom.xml"
CACHE=${DECLSERVE_TEST_CACHE:-$HOME/.cache/declserve-test}
M2="$CACHE/m2"

die() { echo "testinfra/kafka/setup.sh: ERROR: $*" >&2; exit 1; }
log() { echo "testinfra/kafka/setup.sh: $*" >&2; }

[ -f "$POM" ] || die "missing $POM"
KAFKA_VERSION=$(sed -n 's#.*<kafka.version>\([^<]*\)</kafka.version>.*#\1#p' "$POM" | head -n1)
[ -n "$KAFKA_VERSION" ] || die "no <kafka.version> property in $POM"
BASE="$CACHE/kafka/$KAFKA_VERSION"
LIBS="$BASE/libs"

# Verify a libs directory: the broker entry points, the StorageTool and a working SLF4J binding.
check_libs() {
    python3 - "$1" "$KAFKA_VERSION" <<'PY'
import glob, os, sys, zipfile
libs, version = sys.argv[1], sys.argv[2]
core = os.path.join(libs, f"kafka_2.13-{version}.jar")
if not os.path.isfile(core):
    sys.exit(f"missing {core}")
names = set(zipfile.ZipFile(core).namelist())
for cls in ("kafka/Kafka.class", "kafka/tools/StorageTool.class"):
    if cls not in names:
        sys.exit(f"{cls} not found in {core}")
def has(cls):
    for jar in glob.glob(os.path.join(libs, "*.jar")):
        try:
            if cls in zipfile.ZipFile(jar).namelist():
                return True
        except zipfile.BadZipFile:
            sys.exit(f"corrupt jar {jar}")
    return False
# Kafka 4.x resolves slf4j-api 1.7.x, which binds through org/slf4j/impl/StaticLoggerBinder
# (log4j-slf4j-impl). Without it the broker silently logs nothing.
for cls in ("org/slf4j/impl/StaticLoggerBinder.class",
            "org/apache/logging/log4j/core/LoggerContext.class"):
    if not has(cls):
        sys.exit(f"no jar in {libs} provides {cls} (SLF4J -> log4j2 binding missing)")
PY
}

if [ -f "$LIBS/.complete" ] && check_libs "$LIBS" 2>/dev/null; then
    echo "$LIBS"
    exit 0
fi

# --- toolchain ------------------------------------------------------------------------------
need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v python3 >/dev/null 2>&1 || die "python3 is required"
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]} with apt-get"
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to install ${need[*]}"
        SUDO=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -q || die "apt-get update failed"
    # --no-upgrade: never touch a JDK that is already installed (only its PATH entry was missing).
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends --no-upgrade "${need[@]}" \
        || die "apt-get install ${need[*]} failed"
    command -v java >/dev/null 2>&1 || die "java still not on PATH after installing ${need[*]}"
    command -v mvn >/dev/null 2>&1 || die "mvn still not on PATH after installing ${need[*]}"
fi
java_major=$( (java -XshowSettings:properties -version 2>&1 || true) \
    | sed -n 's/^ *java.specification.version = //p')
[ "${java_major%%.*}" -ge 17 ] 2>/dev/null || die "Kafka $KAFKA_VERSION needs Java >= 17, found '${java_major:-unknown}'"

# --- download -------------------------------------------------------------------------------
mkdir -p "$BASE" "$M2"
exec 9>"$BASE/.setup.lock"
flock 9   # one setup at a time (parallel pytest sessions, CI steps)
if [ -f "$LIBS/.complete" ] && check_libs "$LIBS" 2>/dev/null; then
    echo "$LIBS"; exit 0   # another process finished it while we waited
fi

TMP="$BASE/libs.tmp.$$"
rm -rf "$TMP" "$BASE"/libs.tmp.*
log "resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION into $LIBS (maven repo: $M2)"
start=$(date +%s)
# Maven's output goes to stderr: stdout carries only the libs path.
if ! mvn -B -q -Dstyle.color=never -f "$POM" -Dmaven.repo.local="$M2" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$TMP" >&2; then
    rm -rf "$TMP"
    die "mvn dependency:copy-dependencies failed for kafka_2.13 $KAFKA_VERSION (see the Maven output above)"
fi
check_libs "$TMP" || { rm -rf "$TMP"; die "sanity check of the downloaded jars failed"; }
date -u +%FT%TZ >"$TMP/.complete"
rm -rf "$LIBS"
mv "$TMP" "$LIBS"
log "done in $(( $(date +%s) - start ))s: $(ls "$LIBS"/*.jar | wc -l) jars, $(du -sh "$LIBS" | cut -f1)"
echo "$LIBS"
