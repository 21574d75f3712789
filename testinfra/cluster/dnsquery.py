#!/usr/bin/env python3
"""Ask one DNS server for the A records of one name (stdlib only, UDP).

    python3 testinfra/cluster/dnsquery.py SERVER NAME     # prints the addresses, exit 0
                                                           # exit 1: no answer / no A record
Used by scripts/cluster.sh to wait until the cluster DNS (CoreDNS on the pod bridge) answers.
"""

from __future__ import annotations

import random
import socket
import struct
import sys


def query_a(server: str, name: str, timeout: float = 2.0) -> list[str]:
    qid = random.randrange(1 << 16)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, (server, 53))
        data, _ = s.recvfrom(4096)
    rid, flags, qd, an, _, _ = struct.unpack(">HHHHHH", data[:12])
    if rid != qid or flags & 0x000F:  # wrong id, or RCODE != NOERROR
        return []
    pos = 12
    for _ in range(qd):  # skip the question section
        while data[pos]:
            pos += data[pos] + 1
        pos += 5
    out = []
    for _ in range(an):
        if data[pos] & 0xC0 == 0xC0:
            pos += 2
        else:
            while data[pos]:
                pos += data[pos] + 1
            pos += 1
        rtype, _, _, rdlen = struct.unpack(">HHIH", data[pos : pos + 10])
        pos += 10
        if rtype == 1 and rdlen == 4:
            out.append(socket.inet_ntoa(data[pos : pos + 4]))
        pos += rdlen
    return out


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        addrs = query_a(sys.argv[1], sys.argv[2])
    except OSError as exc:
        print(f"dnsquery: {exc}", file=sys.stderr)
        return 1
    print("\n".join(addrs))
    return 0 if addrs else 1


if __name__ == "__main__":
    sys.exit(main())
