"""`scripts/cluster.sh down` gives the host back as it was, and `up` from the cache is fast.

This module is named to run last in tests/cluster: it takes the session's cluster down and
brings a new one up (twice), so that the other cluster tests run on one cluster. What it
compares (testinfra/cluster/hoststate.py): every sysctl but volatile counters, the non-Docker
iptables/ip6tables rules, nft tables, links, routes, mounts, cgroup directories and the host
paths kubelet/CNI/runc create.

1. down the session's cluster, snapshot A; when the session fixture started that cluster,
   compare A with the snapshot it took before its `up` (a cluster that ran every other test);
2. up from the cache (timed: node Ready and DNS answering in under 60 s), down, snapshot B,
   compare B with A;
3. up again, so that the session (and its fixture's final down) goes on with a running cluster.

It holds the cluster exclusively (tests/fixtures/cluster.py): test sessions of other checkouts
that use the cluster at the same moment finish first.
"""

from __future__ import annotations

import pytest

from tests.fixtures.cluster import Cluster, host_diff, host_snapshot

pytestmark = pytest.mark.timeout(1800)  # up to 900 s waiting for other sessions, then 4 cycles

CACHED_UP_LIMIT_S = 60


def test_down_restores_the_host_and_a_cached_up_is_fast(cluster: Cluster) -> None:
    with cluster.exclusively():
        by_tests = cluster.started_by_tests()  # a cluster started by hand stays running after
        cluster.down()
        after_session = host_snapshot()
        session_diff = host_diff(cluster.before_up, after_session) if cluster.before_up else []

        up_seconds = cluster.up()
        node = cluster.core().read_node("k8s-node")
        ready = next(c.status for c in node.status.conditions if c.type == "Ready")
        cluster.down()
        cycle_diff = host_diff(after_session, host_snapshot())

        # give the rest of the session its cluster back before asserting anything
        again = cluster.up(by_tests=by_tests)
    print(f"cached up: {up_seconds:.1f}s, then {again:.1f}s")

    assert ready == "True"
    assert up_seconds < CACHED_UP_LIMIT_S, f"cached up took {up_seconds:.1f}s"
    assert not session_diff, "host differs after down from before the session's up:\n" + "\n".join(
        session_diff
    )
    assert not cycle_diff, "host differs after an up/down cycle:\n" + "\n".join(cycle_diff)
