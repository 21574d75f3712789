"""Traffic inside the real single-node cluster: a pod resolves another Service by its DNS name
(CoreDNS) and reaches it through kube-proxy, and a pod produces a record to the test Kafka broker
(its listener on the node's bridge address). All of it stays on the pod bridge 10.244.0.0/24."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.cluster.workloads import (
    DOUBLE_IMAGE,
    MODEL,
    apply,
    configmap,
    double_deployment,
    service,
    wait_rollout,
)
from tests.fixtures.cluster import Cluster
from tests.fixtures.polling import wait_until

pytestmark = pytest.mark.timeout(3600)


def run_pod(cluster: Cluster, ns: str, name: str, script: str, timeout: float = 90) -> str:
    """Run `python3 -c script` in a pod of the double's image; return its log once it Succeeded."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": DOUBLE_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["python3", "-c", script],
                }
            ],
        },
    }
    apply(cluster, ns, pod)
    core = cluster.core()

    def finished():
        phase = core.read_namespaced_pod(name, ns).status.phase
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_until(
        finished,
        timeout=timeout,
        interval=0.5,
        message=lambda: (
            f"pod {ns}/{name} finished\n"
            + cluster.kubectl("-n", ns, "describe", "pod", name, check=False).stdout[-3000:]
        ),
    )
    logs = core.read_namespaced_pod_log(name, ns)
    assert phase == "Succeeded", f"pod {name} {phase}:\n{logs}"
    return logs


@pytest.fixture(scope="module")
def target(cluster: Cluster, cluster_namespace: str) -> str:
    ns = cluster_namespace
    apply(
        cluster,
        ns,
        configmap("target-v3", 3),
        double_deployment("target", "target-v3", 1),
        service("target", node_port=False),
    )
    wait_rollout(cluster, ns, "target")
    return ns


CLIENT = """
import json, socket, urllib.request
fqdn = "target.{ns}.svc.cluster.local"
addr = socket.gethostbyname(fqdn)
short = socket.gethostbyname("target")
opener = urllib.request.build_opener(urllib.request.ProxyHandler({{}}))
with opener.open("http://target:8501/v1/models/{model}", timeout=10) as r:
    body = json.load(r)
print(json.dumps({{"fqdn": addr, "short": short, "status": body}}))
"""


def test_pod_reaches_another_service_by_dns_name(cluster: Cluster, target: str) -> None:
    ns = target
    cluster_ip = cluster.core().read_namespaced_service("target", ns).spec.cluster_ip
    logs = run_pod(cluster, ns, "dns-client", CLIENT.format(ns=ns, model=MODEL))
    out = json.loads(logs.strip().splitlines()[-1])
    assert out["fqdn"] == out["short"] == cluster_ip, out
    assert out["status"]["model_version_status"][0] == {
        "version": "3",
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }, out


PRODUCER = """
from confluent_kafka import Producer
p = Producer({{"bootstrap.servers": "{bootstrap}", "socket.timeout.ms": 10000,
               "message.timeout.ms": 30000}})
delivered = []
p.produce("{topic}", value=b"{value}", callback=lambda err, msg: delivered.append(err))
p.flush(30)
assert delivered == [None], delivered
print("delivered")
"""


def test_pod_produces_a_record_to_the_test_broker(
    cluster: Cluster, cluster_namespace: str, cluster_kafka
) -> None:
    from confluent_kafka import Consumer
    from confluent_kafka.admin import NewTopic

    topic, value = f"pods-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = cluster_kafka.admin()
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    logs = run_pod(
        cluster,
        cluster_namespace,
        "producer",
        PRODUCER.format(bootstrap=cluster_kafka.pods_bootstrap, topic=topic, value=value),
    )
    assert "delivered" in logs
    consumer = Consumer(
        cluster_kafka.client_config(**{"group.id": f"t-{value}", "auto.offset.reset": "earliest"})
    )
    try:
        consumer.subscribe([topic])

        def record():
            msg = consumer.poll(1.0)
            return msg if msg is not None and msg.error() is None else None

        msg = wait_until(record, timeout=60, message=f"the pod's record on {topic}")
        assert msg.value() == value.encode()
    finally:
        consumer.close()
