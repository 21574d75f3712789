#!/usr/bin/env python3
"""A real single-node Apache Kafka broker (KRaft, combined broker+controller) on 127.0.0.1.

Stdlib only, usable from pytest (``tests/fixtures/kafka.py``) and from the command line::

    python3 testinfra/kafka/broker.py start  --dir DIR   # prints the bootstrap address
    python3 testinfra/kafka/broker.py status --dir DIR   # JSON; exit 0 running, 3 not running
    python3 testinfra/kafka/broker.py stop   --dir DIR

Everything about one broker lives in DIR:

    DIR/broker.json         ports, cluster id, Kafka version (written on first start)
    DIR/server.properties   filled-in copy of server.properties.in
    DIR/log4j2.properties   copy of log4j2.properties
    DIR/data/               log.dirs (KRaft metadata log and topic data)
    DIR/broker.log          the JVM's stdout+stderr, appended across restarts
    DIR/broker.pid          pid of the running JVM
    DIR/bootstrap           "127.0.0.1:PORT"

With ``pods_host`` (e.g. the test cluster's node address on its pod bridge, 10.244.0.1) the
broker has a second listener PODS://pods_host:PORT2, advertised as such, so that pods reach it
(``pods_bootstrap``) while the tests keep using 127.0.0.1.

A second ``start`` on the same DIR reuses the ports, the cluster id and the data, so a test can
stop the broker and start it again on the same address. The jars come from setup.sh (see
``ensure_libs``).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
DEFAULT_HEAP = "512m"
START_TIMEOUT = float(os.environ.get("DECLSERVE_KAFKA_START_TIMEOUT", "120"))
STOP_TIMEOUT = 30.0
SETUP_TIMEOUT = 1800.0


class BrokerError(RuntimeError):
    """The broker could not be installed, started or stopped. The message says why."""


# --------------------------------------------------------------------------------------------
# jars

def cache_dir() -> Path:
    return Path(os.environ.get("DECLSERVE_TEST_CACHE") or Path.home() / ".cache" / "declserve-test")


def kafka_version() -> str:
    """The Kafka version pinned by <kafka.version> in pom.xml (the one source of truth)."""
    m = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>",
                  (HERE / "pom.xml").read_text())
    if not m:
        raise BrokerError(f"no <kafka.version> property in {HERE / 'pom.xml'}")
    return m.group(1)


def libs_dir(version: str | None = None) -> Path:
    return cache_dir() / "kafka" / (version or kafka_version()) / "libs"


def libs_ready(libs: Path, version: str | None = None) -> bool:
    version = version or kafka_version()
    return (libs / ".complete").is_file() and (libs / f"kafka_2.13-{version}.jar").is_file()


def ensure_libs(timeout: float = SETUP_TIMEOUT) -> Path:
    """Return the libs directory, running setup.sh first when the jars are missing."""
    libs = libs_dir()
    if libs_ready(libs):
        return libs
    cmd = ["bash", str(HERE / "setup.sh")]
    try:
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise BrokerError(f"{' '.join(cmd)} did not finish within {timeout:.0f}s") from e
    if res.returncode != 0 or not libs_ready(libs):
        out = (res.stdout + res.stderr).strip().splitlines()
        raise BrokerError(f"{' '.join(cmd)} failed (exit {res.returncode}); last output:\n"
                          + "\n".join(out[-40:]))
    return libs


# --------------------------------------------------------------------------------------------
# small helpers

def free_port(exclude: tuple[int, ...] = ()) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in exclude:
            return port
    raise BrokerError("could not find a free port on 127.0.0.1")


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (22 chars).

    Same format as Kafka's Uuid.randomUuid().toString(); ids starting with '-' are avoided
    because the command-line parser would take them for an option."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def java_bin() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if not java:
        raise BrokerError("java not found on PATH (run testinfra/kafka/setup.sh)")
    return java


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _pid_cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _set_parent_death_signal() -> None:  # runs in the child between fork and exec
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux: no safety net, the fixture still stops the broker
        pass


# --------------------------------------------------------------------------------------------
# minimal Kafka protocol client (readiness probe)

def _kafka_request(sock: socket.socket, api_key: int, version: int, corr: int,
                   body: bytes) -> bytes:
    client_id = b"declserve-probe"
    header = struct.pack(">hhih", api_key, version, corr, len(client_id)) + client_id
    msg = header + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    size = struct.unpack(">i", _recv_exact(sock, 4))[0]
    resp = _recv_exact(sock, size)
    (got_corr,) = struct.unpack_from(">i", resp, 0)
    if got_corr != corr:
        raise BrokerError(f"correlation id mismatch ({got_corr} != {corr})")
    return resp[4:]


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return bytes(buf)


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def _unpack(self, fmt: str):
        (v,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def i16(self) -> int:
        return self._unpack(">h")

    def i32(self) -> int:
        return self._unpack(">i")

    def string(self) -> str | None:
        n = self.i16()
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s


def probe(host: str, port: int, timeout: float = 3.0) -> dict:
    """TCP connect, ApiVersions v0, then Metadata v4 (non-flexible, served by Kafka 1.0-4.x).

    Returns {"cluster_id": ..., "brokers": [(node_id, host, port), ...], "controller_id": ...}.
    Raises OSError/BrokerError when the broker does not answer properly."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        r = _Reader(_kafka_request(sock, 18, 0, 1, b""))  # ApiVersions v0
        err = r.i16()
        if err != 0:
            raise BrokerError(f"ApiVersions error code {err}")
        ranges = {}
        for _ in range(r.i32()):
            key, lo, hi = r.i16(), r.i16(), r.i16()
            ranges[key] = (lo, hi)
        lo, hi = ranges.get(3, (1, 0))
        if not lo <= 4 <= hi:
            raise BrokerError(f"broker does not serve Metadata v4 (serves v{lo}-v{hi})")
        body = struct.pack(">ib", -1, 0)  # all topics, no auto-creation
        r = _Reader(_kafka_request(sock, 3, 4, 2, body))
        r.i32()  # throttle_time_ms
        brokers = []
        for _ in range(r.i32()):
            node, bhost, bport, _rack = r.i32(), r.string(), r.i32(), r.string()
            brokers.append((node, bhost, bport))
        cluster_id = r.string()
        controller_id = r.i32()
        return {"cluster_id": cluster_id, "brokers": brokers, "controller_id": controller_id}


# --------------------------------------------------------------------------------------------
# the broker

class KafkaBroker:
    """One broker whose state lives in ``dir``. ``start()``/``stop()`` may be called repeatedly;
    ports, cluster id and data survive a stop."""

    def __init__(self, dir: str | os.PathLike, libs: str | os.PathLike | None = None,
                 heap: str = DEFAULT_HEAP, node_id: int = 1,
                 extra_properties: dict[str, str] | None = None, die_with_parent: bool = False,
                 jvm_opts: list[str] | None = None, pods_host: str | None = None):
        self.dir = Path(dir).resolve()
        self.pods_host = pods_host
        self.libs = Path(libs) if libs else None
        self.heap = heap
        self.node_id = node_id
        self.extra_properties = dict(extra_properties or {})
        self.die_with_parent = die_with_parent
        self.jvm_opts = list(jvm_opts if jvm_opts is not None
                             else os.environ.get("DECLSERVE_KAFKA_JVM_OPTS", "").split())
        self._proc: subprocess.Popen | None = None
        self.last_start_seconds: float | None = None

    # paths
    state_path = property(lambda self: self.dir / "broker.json")
    props_path = property(lambda self: self.dir / "server.properties")
    log4j_path = property(lambda self: self.dir / "log4j2.properties")
    data_dir = property(lambda self: self.dir / "data")
    log_path = property(lambda self: self.dir / "broker.log")
    pid_path = property(lambda self: self.dir / "broker.pid")

    # ---- state
    def _state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}

    @property
    def port(self) -> int:
        st = self._state()
        if not st:
            raise BrokerError(f"broker in {self.dir} was never configured (start it first)")
        return st["broker_port"]

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def pods_bootstrap(self) -> str:
        """The bootstrap address of the PODS listener (only with ``pods_host``)."""
        st = self._state()
        if not st.get("pods_port"):
            raise BrokerError(f"broker in {self.dir} has no pods listener")
        return f"{st['pods_host']}:{st['pods_port']}"

    @property
    def cluster_id(self) -> str:
        return self._state()["cluster_id"]

    def configure(self) -> dict:
        """Pick ports and write the configuration once; later calls return the same state."""
        st = self._state()
        if st:
            return st
        self.dir.mkdir(parents=True, exist_ok=True)
        bport = free_port()
        cport = free_port(exclude=(bport,))
        st = {
            "kafka_version": kafka_version(),
            "node_id": self.node_id,
            "broker_port": bport,
            "controller_port": cport,
            "bootstrap": f"{HOST}:{bport}",
            "cluster_id": new_cluster_id(),
        }
        text = (HERE / "server.properties.in").read_text()
        for key, value in (("@NODE_ID@", str(self.node_id)), ("@BROKER_PORT@", str(bport)),
                           ("@CONTROLLER_PORT@", str(cport)), ("@DATA_DIR@", str(self.data_dir))):
            text = text.replace(key, value)
        left = re.findall(r"@[A-Z_]+@", text)
        if left:
            raise BrokerError(f"unfilled placeholders in server.properties.in: {left}")
        if self.pods_host:
            # A second listener for pods; the later keys override the template's.
            pport = free_port(exclude=(bport, cport))
            st.update(pods_host=self.pods_host, pods_port=pport)
            text += (
                "\n# second listener for the test cluster's pods (broker.py pods_host)\n"
                f"listeners=PLAINTEXT://{HOST}:{bport},CONTROLLER://{HOST}:{cport},"
                f"PODS://{self.pods_host}:{pport}\n"
                f"advertised.listeners=PLAINTEXT://{HOST}:{bport},PODS://{self.pods_host}:{pport}\n"
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
                "PODS:PLAINTEXT\n")
        if self.extra_properties:
            text += "\n# extra properties\n" + "".join(
                f"{k}={v}\n" for k, v in self.extra_properties.items())
        self.props_path.write_text(text)
        shutil.copyfile(HERE / "log4j2.properties", self.log4j_path)
        self.state_path.write_text(json.dumps(st, indent=2) + "\n")
        (self.dir / "bootstrap").write_text(st["bootstrap"] + "\n")
        return st

    # ---- process
    def _jvm(self, heap: str, extra: list[str] = ()) -> list[str]:
        # C1 only (TieredStopAtLevel=1): a test broker lives seconds to minutes, and skipping
        # C2 cut the start on 2 busy cores from ~10 s to ~6 s (measured, see NOTES.md).
        return [java_bin(), "-Xms128m", f"-Xmx{heap}", "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile=file:{self.log4j_path}",
                f"-Dkafka.logs.dir={self.dir / 'logs'}", *extra, *self.jvm_opts,
                "-cp", f"{self._libs()}/*"]

    # ---- class-data sharing: a dynamic CDS archive of the broker's classes, made by the first
    # broker that runs with the cached jars and stops cleanly, cuts later starts by ~40%.
    # The JVM default -Xshare:auto ignores an archive it cannot use, so it is only an optimisation.
    # DECLSERVE_KAFKA_CDS=0 turns it off.
    @property
    def _cds_pending(self) -> Path:
        return self.dir / "cds.pending.json"

    def _cds_archive(self) -> Path | None:
        if os.environ.get("DECLSERVE_KAFKA_CDS", "1") == "0":
            return None
        java = Path(os.path.realpath(java_bin()))
        libs = self._libs()
        try:
            jvm = (java.parent.parent / "lib" / "server" / "libjvm.so").stat()
            lst = libs.stat()
        except OSError:
            return None
        # The archive is valid only for this JVM build and this exact classpath (a re-run of
        # setup.sh creates a new libs directory, hence a new inode).
        ident = f"{java}|{jvm.st_size}|{jvm.st_mtime_ns}|{libs}|{lst.st_ino}|{lst.st_mtime_ns}"
        key = hashlib.sha1(ident.encode()).hexdigest()[:16]
        return libs.parent / "cds" / f"kafka-{key}.jsa"

    def _cds_options(self, create: bool) -> list[str]:
        archive = self._cds_archive()
        if archive is None:
            return []
        if archive.is_file():
            return [f"-XX:SharedArchiveFile={archive}"]
        if not create:
            return []
        archive.parent.mkdir(parents=True, exist_ok=True)
        tmp = archive.with_name(f"{archive.name}.{uuid.uuid4().hex[:8]}.tmp")
        self._cds_pending.write_text(json.dumps({"tmp": str(tmp), "final": str(archive),
                                                 "ready": False}))
        return [f"-XX:ArchiveClassesAtExit={tmp}"]

    def _cds_mark_ready(self) -> None:
        try:
            pending = json.loads(self._cds_pending.read_text())
        except FileNotFoundError:
            return
        pending["ready"] = True
        self._cds_pending.write_text(json.dumps(pending))

    def _cds_finish(self, clean_exit: bool) -> None:
        """After the JVM exited: keep the archive it dumped only if it had been ready and exited
        cleanly (a SIGKILLed JVM may leave a truncated file)."""
        try:
            pending = json.loads(self._cds_pending.read_text())
        except FileNotFoundError:
            return
        tmp, final = Path(pending["tmp"]), Path(pending["final"])
        if clean_exit and pending.get("ready") and tmp.is_file() and tmp.stat().st_size > 0:
            os.replace(tmp, final)
            for old in final.parent.glob("kafka-*.jsa"):  # archives of older JVMs or jars
                if old != final:
                    old.unlink(missing_ok=True)
        else:
            tmp.unlink(missing_ok=True)
        self._cds_pending.unlink(missing_ok=True)

    def _libs(self) -> Path:
        if self.libs is None:
            self.libs = libs_dir(self._state().get("kafka_version"))
        if not libs_ready(self.libs, self._state().get("kafka_version")):
            raise BrokerError(f"Kafka jars missing in {self.libs}: run testinfra/kafka/setup.sh")
        return self.libs

    def _log_marker(self, what: str) -> None:
        with open(self.log_path, "a") as f:
            f.write(f"\n===== declserve broker.py: {what} at {time.strftime('%F %T')} =====\n")

    def format_storage(self) -> None:
        """Format log.dirs with the cluster id (static quorum: no --standalone). Once only."""
        if (self.data_dir / "meta.properties").is_file():
            return
        self._log_marker("kafka-storage format")
        cmd = self._jvm("256m", self._cds_options(create=False)) + ["kafka.tools.StorageTool",
                                   "format", "-t", self.cluster_id, "-c", str(self.props_path)]
        with open(self.log_path, "a") as log:
            res = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, timeout=120)
        if res.returncode != 0 or not (self.data_dir / "meta.properties").is_file():
            raise BrokerError(f"formatting Kafka storage failed (exit {res.returncode})\n"
                              + self.log_tail())

    def pid(self) -> int | None:
        """Pid of this DIR's running broker JVM, or None."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        try:
            pid = int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        cmd = _pid_cmdline(pid)
        if _pid_alive(pid) and "kafka.Kafka" in cmd and str(self.props_path) in cmd:
            return pid
        return None  # stale pid file (process gone, or pid reused by something else)

    def running(self) -> bool:
        return self.pid() is not None

    def start(self, timeout: float = START_TIMEOUT) -> str:
        """Start the broker (no-op when running) and wait until it answers a metadata request.
        Returns the bootstrap address."""
        if self.running():
            return self.bootstrap
        t0 = time.monotonic()
        st = self.configure()
        self.format_storage()
        self._log_marker("start kafka.Kafka")
        cmd = self._jvm(self.heap, self._cds_options(create=True)) + [
            "kafka.Kafka", str(self.props_path)]
        log = open(self.log_path, "a")
        try:
            self._proc = subprocess.Popen(
                cmd, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_set_parent_death_signal if self.die_with_parent else None)
        finally:
            log.close()
        self.pid_path.write_text(f"{self._proc.pid}\n")
        try:
            self._wait_ready(st, t0 + timeout)
        except BaseException:
            self.stop()
            raise
        self._cds_mark_ready()
        self.last_start_seconds = time.monotonic() - t0
        return self.bootstrap

    def _wait_ready(self, st: dict, deadline: float) -> None:
        last_err: object = None
        while True:
            code = self._proc.poll()
            if code is not None:
                raise BrokerError(f"Kafka broker exited with code {code} during start-up "
                                  f"(log: {self.log_path})\n" + self.log_tail())
            try:
                md = probe(HOST, st["broker_port"], timeout=2.0)
                ours = [b for b in md["brokers"] if b[0] == st["node_id"]
                        and b[2] == st["broker_port"]]
                if md["cluster_id"] == st["cluster_id"] and ours:
                    return
                last_err = f"metadata not ready yet: {md}"
            except (OSError, BrokerError, struct.error) as e:
                last_err = e
            if time.monotonic() >= deadline:
                raise BrokerError(f"Kafka broker on {self.bootstrap} did not answer a metadata "
                                  f"request in time (last error: {last_err}; log: "
                                  f"{self.log_path})\n" + self.log_tail())
            time.sleep(0.2)  # poll interval, bounded by the deadline above

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """SIGTERM, then SIGKILL after ``timeout`` seconds. Returns True if a broker was running."""
        pid = self.pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            self._cds_finish(clean_exit=False)
            return False
        self._log_marker(f"stop (SIGTERM to {pid})")
        clean = True
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 15.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            if self._wait_exit(pid, wait):
                break
            clean = False
            if sig == signal.SIGTERM:
                self._log_marker(f"no exit {timeout:.0f}s after SIGTERM: SIGKILL to {pid}")
        else:
            raise BrokerError(f"Kafka broker pid {pid} survived SIGKILL")
        self._proc = None
        self.pid_path.unlink(missing_ok=True)
        self._cds_finish(clean_exit=clean)
        return True

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while _pid_alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def status(self) -> dict:
        st = self._state()
        pid = self.pid()
        out = {"dir": str(self.dir), "running": pid is not None, "pid": pid,
               "bootstrap": st.get("bootstrap"), "kafka_version": st.get("kafka_version"),
               "cluster_id": st.get("cluster_id"), "log": str(self.log_path), "answering": False}
        if pid is not None:
            try:
                md = probe(HOST, st["broker_port"])
                out["answering"] = md["cluster_id"] == st["cluster_id"]
            except (OSError, BrokerError, struct.error) as e:
                out["error"] = str(e)
        return out

    def log_tail(self, lines: int = 60, errors: int = 8) -> str:
        """The last ``lines`` lines of the broker log, preceded by the first ``errors`` ERROR or
        FATAL lines of the latest run (a failed start ends with pages of shutdown noise that
        push the real cause out of the tail)."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no broker log)"
        run_start = max((i for i, line in enumerate(text)
                         if line.startswith("===== declserve broker.py:")), default=0)
        tail_start = max(0, len(text) - lines)
        first_errors = [line for line in text[run_start:tail_start]
                        if re.search(r"\] (ERROR|FATAL) |^Caused by: ", line)][:errors]
        out = []
        if first_errors:
            out.append(f"--- first errors of the latest run in {self.log_path} ---")
            out.extend(first_errors)
        out.append(f"--- last {len(text) - tail_start} lines of {self.log_path} ---")
        out.extend(text[tail_start:])
        return "\n".join(out)

    def __repr__(self) -> str:
        st = self._state()
        return f"KafkaBroker(dir={str(self.dir)!r}, bootstrap={st.get('bootstrap')!r})"


# --------------------------------------------------------------------------------------------
# command line

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["start", "stop", "status"])
    ap.add_argument("--dir", required=True, help="state directory of this broker")
    ap.add_argument("--timeout", type=float, default=None, help="start/stop deadline, seconds")
    ap.add_argument("--heap", default=DEFAULT_HEAP, help="JVM -Xmx (default %(default)s)")
    args = ap.parse_args(argv)
    broker = KafkaBroker(args.dir, heap=args.heap)
    try:
        if args.command == "start":
            if not broker.running():
                ensure_libs()
            print(broker.start(timeout=args.timeout or START_TIMEOUT))
            if broker.last_start_seconds is not None:
                print(f"started in {broker.last_start_seconds:.1f}s, pid {broker.pid()}, "
                      f"log {broker.log_path}", file=sys.stderr)
            return 0
        if args.command == "stop":
            was = broker.stop(timeout=args.timeout or STOP_TIMEOUT)
            print("stopped" if was else "not running", file=sys.stderr)
            return 0
        st = broker.status()
        print(json.dumps(st, indent=2))
        return 0 if st["running"] and st["answering"] else 3
    except BrokerError as e:
        print(f"broker.py {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
