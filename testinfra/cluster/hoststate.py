#!/usr/bin/env python3
"""A snapshot of the host state scripts/cluster.sh changes, to compare before `up` and after `down`.

    python3 testinfra/cluster/hoststate.py > before.json
    ...
    python3 testinfra/cluster/hoststate.py --diff before.json     # exit 1 and a diff when changed

Sections: sysctls (every readable /proc/sys key but volatile counters and per-interface keys),
iptables and ip6tables rules (iptables-save without counters), nft tables, links, routes,
mounts, cgroup directories (every v1 hierarchy) and the host paths kubelet/CNI/runc create.

Objects of the Docker engine are left out on purpose: other tests create and remove containers
and networks while this runs, and the cluster never touches them. Left out are: chains named
DOCKER* and rules naming them or a Docker bridge (docker0, br-*), the engine's per-container
hairpin MASQUERADE rules; links docker0, br-* and veths enslaved to them; routes on those
bridges and on veths (a veth left behind shows among the links); mounts under
/var/lib/docker, /run/docker; cgroup
subtrees named docker; mmdebstrap's temporary chroots (image builds); the memory cgroups of this
machine's process supervisor (/process_api).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HOST_PATHS = [
    "/var/lib/kubelet",
    "/var/lib/kubelet/device-plugins",
    "/var/log/containers",
    "/var/log/pods",
    "/var/lib/cni",
    "/var/lib/cni/results",
    "/run/containerd/runc/k8s.io",
    "/var/run/netns",
    "/etc/cni",
    "/opt/cni",
]
VOLATILE_SYSCTL = re.compile(
    r"^(kernel\.random\.|kernel\.ns_last_pid$|kernel\.pty\.nr$|kernel\.sched_|kernel\.perf_|"
    r"fs\.(dentry-state|inode-nr|inode-state|file-nr|aio-nr|quota\.)|fs\.binfmt_misc\.|"
    r"net\.netfilter\.nf_conntrack_count$|vm\.stat_refresh$|vm\.drop_caches$|"
    r"net\.ipv[46]\.route\.flush$|dev\.cdrom\.|kernel\.tainted$|"
    r"kernel\.unprivileged_userns_apparmor_policy$|user\.max_)"
)
PER_IFACE = re.compile(r"^net\.(ipv4|ipv6)\.(conf|neigh)\.([^.]+)\.")
DOCKER_IFACE = re.compile(r"^(docker\d*|br-[0-9a-f]{12})$")
DOCKER_RULE = re.compile(
    r"DOCKER|docker0|\bbr-[0-9a-f]{12}\b"
    # the engine's hairpin rule for a published port of one container
    r"|^-A POSTROUTING -s (\S+)/32 -d \1/32 -p \w+ -m \w+ --dport \d+ "
    r"-j MASQUERADE$"
)


def sysctls() -> dict[str, str]:
    out = {}
    for root, _dirs, files in os.walk("/proc/sys"):
        for f in files:
            path = os.path.join(root, f)
            key = path[len("/proc/sys/") :].replace("/", ".")
            m = PER_IFACE.match(key)
            if (m and m.group(3) not in ("all", "default")) or VOLATILE_SYSCTL.match(key):
                continue
            try:
                with open(path) as fh:
                    out[key] = " ".join(fh.read().split())
            except OSError:
                continue
    return out


def iptables(cmd: str) -> list[str]:
    if not shutil.which(cmd):
        return []
    res = subprocess.run([cmd], capture_output=True, text=True, check=False)
    lines = []
    for line in res.stdout.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        line = re.sub(r" \[\d+:\d+\]$", "", line)
        if DOCKER_RULE.search(line):
            continue
        lines.append(line)
    return lines


def nft_tables() -> list[str]:
    if not shutil.which("nft"):
        return []
    res = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False)
    return sorted(res.stdout.split("\n")[:-1] if res.stdout else [])


def _ip_json(*args: str) -> list[dict]:
    res = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=False)
    return json.loads(res.stdout or "[]")


def links() -> list[str]:
    out = []
    for link in _ip_json("link", "show"):
        name, master = link.get("ifname", ""), link.get("master", "")
        if DOCKER_IFACE.match(name) or DOCKER_IFACE.match(master):
            continue
        out.append(f"{name} type={link.get('link_type')} master={master or '-'}")
    return sorted(out)


def routes() -> list[str]:
    out = []
    for fam in ("-4", "-6"):
        for r in _ip_json(fam, "route", "show", "table", "all"):
            dev = r.get("dev", "")
            # routes of veths: a veth left behind shows in links() already
            if DOCKER_IFACE.match(dev) or dev.startswith("veth"):
                continue
            out.append(
                f"{fam} {r.get('dst')} dev={dev} table={r.get('table', 'main')} "
                f"via={r.get('gateway', '-')}"
            )
    return sorted(out)


def mounts() -> list[str]:
    out = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            parts = line.split()
            target = parts[4].replace("\\040", " ")
            fstype = parts[parts.index("-") + 1]
            if target.startswith(
                ("/var/lib/docker/", "/run/docker/", "/var/run/docker/", "/tmp/mmdebstrap.")
            ):
                continue
            out.append(f"{target} {fstype}")
    return sorted(out)


def cgroups() -> list[str]:
    out = []
    base = Path("/sys/fs/cgroup")
    for h in sorted(p for p in base.iterdir() if p.is_dir()):
        for root, dirs, _files in os.walk(h):
            dirs[:] = [d for d in dirs if d not in ("docker", "process_api")]
            rel = os.path.relpath(root, base)
            out.append(rel)
    return sorted(out)


def snapshot() -> dict:
    return {
        "sysctls": sysctls(),
        "iptables": iptables("iptables-save"),
        "ip6tables": iptables("ip6tables-save"),
        "nft_tables": nft_tables(),
        "links": links(),
        "routes": routes(),
        "mounts": mounts(),
        "cgroups": cgroups(),
        "paths": [p for p in HOST_PATHS if os.path.lexists(p)],
    }


def diff(before: dict, after: dict) -> list[str]:
    """Human-readable differences, one line each ('-' only before, '+' only after)."""
    out = []
    for section in sorted(set(before) | set(after)):
        b, a = before.get(section), after.get(section)
        if isinstance(b, dict) or isinstance(a, dict):
            b, a = b or {}, a or {}
            for k in sorted(set(b) | set(a)):
                if b.get(k) != a.get(k):
                    out.append(f"{section}: {k}: {b.get(k)!r} -> {a.get(k)!r}")
        else:
            b, a = list(b or []), list(a or [])
            out += [f"{section}: - {x}" for x in b if x not in a]
            out += [f"{section}: + {x}" for x in a if x not in b]
    return out


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--diff":
        changes = diff(json.loads(Path(sys.argv[2]).read_text()), snapshot())
        print("\n".join(changes) or "no changes")
        return 1 if changes else 0
    if len(sys.argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    json.dump(snapshot(), sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
