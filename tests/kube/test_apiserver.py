"""The throwaway Kubernetes API server is real and usable by the Kubernetes/KServe backends.

Everything here runs against `kube_apiserver` (tests/fixtures/kube.py): a real etcd and
kube-apiserver on 127.0.0.1 with the KServe InferenceService CRD installed. No controller
runs, so the tests play the controller where one is needed (e.g. writing status).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.fixtures.kube import KSERVE_CRD_NAME, REPO

APPLY = "application/apply-patch+yaml"
MANAGER = "declserve-test"
ISVC = ("serving.kserve.io", "v1beta1", "inferenceservices")

# The first run builds kube-apiserver inside the fixture (10-25 min on 2 cores), which does not
# fit pyproject's 900 s per-test timeout; scripts/setup.sh should run testinfra/kube/setup.sh.
pytestmark = pytest.mark.timeout(60 * 60)


# --------------------------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture
def api(kube_apiserver):
    with kube_apiserver.api_client() as api_client:
        yield api_client


@pytest.fixture
def ns(api) -> str:
    """A fresh namespace per test (never deleted: no namespace controller runs, etcd is
    thrown away at the end of the session)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


def _status_of(exc: ApiException) -> dict:
    return json.loads(exc.body)


def _managers(obj) -> dict[str, str]:
    """field manager -> operation, from a model object's metadata.managedFields."""
    return {m.manager: m.operation for m in obj.metadata.managed_fields or []}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _expected_k8s_version() -> str:
    gomod = (REPO / "testinfra" / "kube-apiserver" / "go.mod").read_text()
    m = re.search(r"^\s*k8s\.io/kubernetes (v\S+)", gomod, re.MULTILINE)
    assert m, "k8s.io/kubernetes not pinned in testinfra/kube-apiserver/go.mod"
    return m.group(1)


def _tcp_sockets(pid: int) -> list[tuple[str, int, str, int]]:
    """(local ip, local port, remote ip, remote port) of every TCP socket the process holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])

    def addr(hexaddr: str) -> tuple[str, int]:
        ip_hex, port_hex = hexaddr.split(":")
        raw = bytes.fromhex(ip_hex)
        # /proc/net/tcp* stores the address as 32-bit words in host (little-endian) order
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
        return str(ipaddress.ip_address(raw)), int(port_hex, 16)

    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            cols = line.split()
            if cols[9] in inodes:
                found.append((*addr(cols[1]), *addr(cols[2])))
    return found


def _ip(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    a = ipaddress.ip_address(ip)
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped:
        a = a.ipv4_mapped
    return a


# --------------------------------------------------------------------------------------------
# the server itself


def test_kubeconfig_server_is_https_loopback(kube_apiserver, api):
    cfg = yaml.safe_load(kube_apiserver.kubeconfig.read_text())
    (cluster,) = cfg["clusters"]
    server = cluster["cluster"]["server"]
    url = urlparse(server)
    assert url.scheme == "https"
    assert url.hostname == "127.0.0.1"
    assert url.port == kube_apiserver.port and 0 < url.port < 65536
    assert server == f"https://127.0.0.1:{kube_apiserver.port}"
    # TLS is verified against the throwaway CA, not switched off
    assert "insecure-skip-tls-verify" not in cluster["cluster"]
    assert Path(cluster["cluster"]["certificate-authority"]).is_file()
    assert api.configuration.host == server
    assert api.configuration.verify_ssl is True
    assert api.configuration.proxy is None


def test_server_is_the_pinned_kube_apiserver(api):
    info = client.VersionApi(api).get_code()
    assert info.git_version == _expected_k8s_version()
    assert info.major == "1"
    names = {n.metadata.name for n in client.CoreV1Api(api).list_namespace().items}
    assert {"default", "kube-system", "kube-public"} <= names
    # RBAC is really enforced: the admin token is in system:masters and may do anything
    review = client.AuthorizationV1Api(api).create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"verb": "delete", "resource": "nodes"}}}
    )
    assert review.status.allowed is True


def test_unauthenticated_requests_are_rejected(kube_apiserver):
    cfg = client.Configuration()
    cfg.host = kube_apiserver.server
    cfg.ssl_ca_cert = str(kube_apiserver.ca_file)
    cfg.proxy = None
    cfg.api_key = {"authorization": "Bearer not-the-token"}
    with client.ApiClient(cfg) as anon, pytest.raises(ApiException) as err:
        client.CoreV1Api(anon).list_namespace()
    assert err.value.status == 401


def test_servers_only_use_loopback(kube_apiserver):
    etcd, apiserver = kube_apiserver.etcd_proc, kube_apiserver.apiserver_proc
    assert etcd is not None and apiserver is not None
    assert etcd.poll() is None and apiserver.poll() is None
    api_socks = _tcp_sockets(apiserver.pid)
    etcd_socks = _tcp_sockets(etcd.pid)
    assert any(lp == kube_apiserver.port for _, lp, _, _ in api_socks)
    etcd_port = urlparse(kube_apiserver.etcd_url).port
    assert any(lp == etcd_port for _, lp, _, _ in etcd_socks)
    # the apiserver really talks to etcd ...
    assert any(rp == etcd_port for _, _, _, rp in api_socks)
    # ... and nothing listens on or connects to anything but 127.0.0.1
    for lip, lport, rip, rport in api_socks + etcd_socks:
        assert _ip(lip).is_loopback, (lip, lport, rip, rport)
        assert _ip(rip).is_loopback or _ip(rip).is_unspecified, (lip, lport, rip, rport)


# --------------------------------------------------------------------------------------------
# core objects the Kubernetes backend will manage: create, read, server-side apply, delete


def _deployment(name: str, replicas: int, image: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "tfserving",
                            "image": image,
                            "args": ["--model_config_file=/models/models.config"],
                            "ports": [
                                {"name": "grpc", "containerPort": 8500},
                                {"name": "http", "containerPort": 8501},
                            ],
                        }
                    ]
                },
            },
        },
    }


def test_deployment_create_read_apply_delete(api, ns):
    apps = client.AppsV1Api(api)
    created = apps.create_namespaced_deployment(
        ns, _deployment("tfs", 1, "tensorflow/serving:2.19.0")
    )
    assert created.metadata.uid and created.metadata.generation == 1
    # server-side defaulting proves a real API server
    assert created.spec.strategy.type == "RollingUpdate"
    assert created.spec.revision_history_limit == 10

    read = apps.read_namespaced_deployment("tfs", ns)
    assert read.metadata.uid == created.metadata.uid
    assert read.spec.template.spec.containers[0].image == "tensorflow/serving:2.19.0"

    applied = apps.patch_namespaced_deployment(
        "tfs",
        ns,
        _deployment("tfs", 3, "tensorflow/serving:2.20.0"),
        field_manager=MANAGER,
        force=True,
        _content_type=APPLY,
    )
    assert applied.spec.replicas == 3
    assert applied.spec.template.spec.containers[0].image == "tensorflow/serving:2.20.0"
    assert applied.metadata.generation == 2
    assert _managers(applied)[MANAGER] == "Apply"

    # a second manager may not silently take over fields owned by declserve-test
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment(
            "tfs",
            ns,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "tfs"},
                "spec": {"replicas": 5},
            },
            field_manager="someone-else",
            _content_type=APPLY,
        )
    assert err.value.status == 409
    assert "conflict" in _status_of(err.value)["message"].lower()
    assert apps.read_namespaced_deployment("tfs", ns).spec.replicas == 3

    apps.delete_namespaced_deployment("tfs", ns)
    with pytest.raises(ApiException) as err:
        apps.read_namespaced_deployment("tfs", ns)
    assert err.value.status == 404


def _service(name: str, ports: list[tuple[str, int]]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"app": name},
            "ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports],
        },
    }


def test_service_create_read_apply_delete(api, ns):
    core = client.CoreV1Api(api)
    created = core.create_namespaced_service(ns, _service("tfs", [("grpc", 8500)]))
    # the real ClusterIP allocator hands out an address of --service-cluster-ip-range
    assert ipaddress.ip_address(created.spec.cluster_ip) in ipaddress.ip_network("10.0.0.0/24")
    assert created.spec.type == "ClusterIP"

    read = core.read_namespaced_service("tfs", ns)
    assert [p.port for p in read.spec.ports] == [8500]

    applied = core.patch_namespaced_service(
        "tfs",
        ns,
        _service("tfs", [("grpc", 8500), ("http", 8501)]),
        field_manager=MANAGER,
        force=True,
        _content_type=APPLY,
    )
    assert sorted(p.port for p in applied.spec.ports) == [8500, 8501]
    assert applied.spec.cluster_ip == created.spec.cluster_ip
    assert _managers(applied)[MANAGER] == "Apply"

    # the API server validates: a port out of range is rejected
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_service(
            "tfs",
            ns,
            _service("tfs", [("grpc", 70000)]),
            field_manager=MANAGER,
            force=True,
            _content_type=APPLY,
        )
    assert err.value.status == 422

    core.delete_namespaced_service("tfs", ns)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_service("tfs", ns)
    assert err.value.status == 404


def test_configmap_create_read_apply_delete(api, ns):
    core = client.CoreV1Api(api)
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "models"},
        "data": {"models.config": "model_config_list {}\n"},
    }
    created = core.create_namespaced_config_map(ns, body)
    assert created.data == {"models.config": "model_config_list {}\n"}

    assert core.read_namespaced_config_map("models", ns).metadata.uid == created.metadata.uid

    body["data"] = {
        "models.config": "model_config_list { config { name: 'a' } }\n",
        "monitoring.config": "prometheus_config { enable: true }\n",
    }
    applied = core.patch_namespaced_config_map(
        "models", ns, body, field_manager=MANAGER, force=True, _content_type=APPLY
    )
    assert applied.data == body["data"]
    assert int(applied.metadata.resource_version) > int(created.metadata.resource_version)
    assert _managers(applied)[MANAGER] == "Apply"

    # applying again without a key removes it: the manager owns the set of keys it applies
    body["data"] = {"models.config": "model_config_list {}\n"}
    applied = core.patch_namespaced_config_map(
        "models", ns, body, field_manager=MANAGER, force=True, _content_type=APPLY
    )
    assert set(applied.data) == {"models.config"}

    core.delete_namespaced_config_map("models", ns)
    assert "models" not in {c.metadata.name for c in core.list_namespaced_config_map(ns).items}


def test_lease_create_read_apply_delete(api, ns):
    coord = client.CoordinationV1Api(api)
    acquired = datetime(2026, 1, 1, 0, 0, 0, 250000, tzinfo=UTC)
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "declserve-apply-lock"},
        "spec": {
            "holderIdentity": "runner-a",
            "leaseDurationSeconds": 30,
            "acquireTime": acquired,
            "renewTime": acquired,
        },
    }
    created = coord.create_namespaced_lease(ns, body)
    assert created.spec.holder_identity == "runner-a"

    read = coord.read_namespaced_lease("declserve-apply-lock", ns)
    assert read.spec.lease_duration_seconds == 30
    assert read.spec.renew_time == acquired  # MicroTime keeps the microseconds

    apply = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "declserve-apply-lock"},
        "spec": {
            "holderIdentity": "runner-b",
            "leaseDurationSeconds": 30,
            "leaseTransitions": 1,
            "renewTime": "2026-01-01T00:00:10.500000Z",
        },
    }
    applied = coord.patch_namespaced_lease(
        "declserve-apply-lock", ns, apply, field_manager=MANAGER, force=True, _content_type=APPLY
    )
    assert applied.spec.holder_identity == "runner-b"
    assert applied.spec.lease_transitions == 1
    assert applied.spec.renew_time == datetime(2026, 1, 1, 0, 0, 10, 500000, tzinfo=UTC)
    assert _managers(applied)[MANAGER] == "Apply"

    # optimistic concurrency: a replace with a stale resourceVersion conflicts
    stale = read
    stale.spec.holder_identity = "runner-c"
    with pytest.raises(ApiException) as err:
        coord.replace_namespaced_lease("declserve-apply-lock", ns, stale)
    assert err.value.status == 409

    coord.delete_namespaced_lease("declserve-apply-lock", ns)
    with pytest.raises(ApiException) as err:
        coord.read_namespaced_lease("declserve-apply-lock", ns)
    assert err.value.status == 404


# --------------------------------------------------------------------------------------------
# KServe InferenceService through the real CRD


def test_kserve_crd_is_established(api):
    crd = client.ApiextensionsV1Api(api).read_custom_resource_definition(KSERVE_CRD_NAME)
    conditions = {c.type: c.status for c in crd.status.conditions}
    assert conditions.get("Established") == "True"
    assert conditions.get("NamesAccepted") == "True"
    assert crd.spec.names.kind == "InferenceService"
    assert "isvc" in crd.spec.names.short_names
    resources = client.CustomObjectsApi(api).get_api_resources("serving.kserve.io", "v1beta1")
    names = {r.name for r in resources.resources}
    assert {"inferenceservices", "inferenceservices/status"} <= names


def _isvc(name: str) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "annotations": {"serving.kserve.io/deploymentMode": "Serverless"},
        },
        "spec": {
            "predictor": {
                "minReplicas": 0,
                "maxReplicas": 3,
                "scaleMetric": "concurrency",
                "logger": {"mode": "all", "url": "http://message-dumper.default.svc.cluster.local"},
                "tensorflow": {
                    "storageUri": "pvc://models/flowers",
                    "runtimeVersion": "2.19.0",
                    "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
                },
            },
            "transformer": {
                "minReplicas": 0,
                "containers": [
                    {
                        "name": "kserve-container",
                        "image": "registry.invalid/declserve/flowers-transformer:1.0",
                        "args": ["--model_name", name, "--protocol", "v1"],
                    }
                ],
            },
        },
    }


def test_create_inferenceservice_tensorflow_scale_to_zero_logger_transformer(api, ns):
    custom = client.CustomObjectsApi(api)
    body = _isvc("flowers")
    # an unknown field that the structural schema must prune
    body["spec"]["predictor"]["tensorflow"]["notAKServeField"] = "dropped"
    created = custom.create_namespaced_custom_object(*ISVC[:2], ns, ISVC[2], body)
    assert created["metadata"]["uid"]
    assert created["metadata"]["generation"] == 1

    got = custom.get_namespaced_custom_object(*ISVC[:2], ns, ISVC[2], "flowers")
    pred = got["spec"]["predictor"]
    assert pred["minReplicas"] == 0  # explicitly zero, kept (scale to zero)
    assert pred["maxReplicas"] == 3
    assert pred["logger"] == {
        "mode": "all",
        "url": "http://message-dumper.default.svc.cluster.local",
    }
    assert pred["tensorflow"]["storageUri"] == "pvc://models/flowers"
    assert pred["tensorflow"]["runtimeVersion"] == "2.19.0"
    assert "notAKServeField" not in pred["tensorflow"]
    assert got["spec"]["transformer"]["containers"][0]["image"].endswith("flowers-transformer:1.0")
    assert got["spec"]["transformer"]["minReplicas"] == 0
    assert "status" not in got or not got["status"].get("conditions")  # no controller runs

    listed = custom.list_namespaced_custom_object(*ISVC[:2], ns, ISVC[2])
    assert [i["metadata"]["name"] for i in listed["items"]] == ["flowers"]


def test_inferenceservice_server_side_apply(api, ns):
    custom = client.CustomObjectsApi(api)
    body = _isvc("flowers-ssa")

    def apply() -> tuple[int, dict]:
        # _preload_content=False: the generated client maps only 200 to a body, so an apply
        # that creates the object (201 Created) would otherwise come back as None.
        resp = custom.patch_namespaced_custom_object(
            *ISVC[:2],
            ns,
            ISVC[2],
            "flowers-ssa",
            body,
            field_manager=MANAGER,
            force=True,
            _content_type=APPLY,
            _preload_content=False,
        )
        return resp.status, json.loads(resp.data)

    code, applied = apply()  # apply creates a missing object
    assert code == 201
    assert applied["metadata"]["generation"] == 1
    managers = {m["manager"]: m["operation"] for m in applied["metadata"]["managedFields"]}
    assert managers == {MANAGER: "Apply"}
    assert applied["spec"]["predictor"]["minReplicas"] == 0

    code, again = apply()  # applying the same thing is a no-op
    assert code == 200
    assert again["metadata"]["generation"] == 1
    assert again["metadata"]["resourceVersion"] == applied["metadata"]["resourceVersion"]

    body["spec"]["predictor"]["maxReplicas"] = 5
    code, applied = apply()
    assert code == 200
    assert applied["spec"]["predictor"]["maxReplicas"] == 5
    assert applied["metadata"]["generation"] == 2

    custom.delete_namespaced_custom_object(*ISVC[:2], ns, ISVC[2], "flowers-ssa")
    with pytest.raises(ApiException) as err:
        custom.get_namespaced_custom_object(*ISVC[:2], ns, ISVC[2], "flowers-ssa")
    assert err.value.status == 404


INVALID_ISVCS = {
    "minReplicas-not-an-integer": (
        lambda b: b["spec"]["predictor"].update(minReplicas="zero"),
        "spec.predictor.minReplicas",
        "must be of type integer",
    ),
    "logger-mode-not-in-enum": (
        lambda b: b["spec"]["predictor"]["logger"].update(mode="everything"),
        "spec.predictor.logger.mode",
        'supported values: "all", "request", "response"',
    ),
    "predictor-missing": (lambda b: b["spec"].pop("predictor"), "spec.predictor", "Required value"),
    "transformer-container-without-name": (
        lambda b: b["spec"]["transformer"]["containers"][0].pop("name"),
        "spec.transformer.containers[0].name",
        "Required value",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID_ISVCS))
def test_invalid_inferenceservice_is_rejected_by_crd_schema(api, ns, case):
    mutate, field, message = INVALID_ISVCS[case]
    body = _isvc("bad")
    mutate(body)
    custom = client.CustomObjectsApi(api)
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(*ISVC[:2], ns, ISVC[2], body)
    assert err.value.status == 422
    status = _status_of(err.value)
    assert status["reason"] == "Invalid"
    assert status["details"]["kind"] == "InferenceService"
    assert status["details"]["group"] == "serving.kserve.io"
    assert message in status["message"], status["message"]
    assert field in {c.get("field") for c in status["details"]["causes"]}, status
    # nothing was stored
    assert custom.list_namespaced_custom_object(*ISVC[:2], ns, ISVC[2])["items"] == []


def test_status_condition_through_status_subresource(api, ns):
    """Write status like a controller: through /status, owned by its own field manager."""
    custom = client.CustomObjectsApi(api)
    created = custom.create_namespaced_custom_object(*ISVC[:2], ns, ISVC[2], _isvc("flowers-st"))
    assert created["metadata"]["generation"] == 1

    # status sent with the main resource is ignored (the status subresource is enabled)
    sneaky = custom.patch_namespaced_custom_object(
        *ISVC[:2], ns, ISVC[2], "flowers-st", {"status": {"url": "http://should-not-stick"}}
    )
    assert "url" not in sneaky.get("status", {})

    now = _now()
    status_apply = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "flowers-st"},
        "status": {
            "observedGeneration": 1,
            "url": "http://flowers-st.example.invalid",
            "conditions": [
                {"type": "PredictorReady", "status": "True", "lastTransitionTime": now},
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Reconciled",
                    "message": "set by the test acting as controller",
                    "lastTransitionTime": now,
                },
            ],
        },
    }
    after = custom.patch_namespaced_custom_object_status(
        *ISVC[:2],
        ns,
        ISVC[2],
        "flowers-st",
        status_apply,
        field_manager="declserve-test-controller",
        force=True,
        _content_type=APPLY,
    )
    assert after["metadata"]["generation"] == 1  # status writes do not bump generation
    assert after["spec"] == created["spec"]  # nor touch the spec

    got = custom.get_namespaced_custom_object_status(*ISVC[:2], ns, ISVC[2], "flowers-st")
    conds = {c["type"]: c for c in got["status"]["conditions"]}
    assert conds["Ready"]["status"] == "True"
    assert conds["Ready"]["reason"] == "Reconciled"
    assert conds["Ready"]["lastTransitionTime"] == now
    assert conds["PredictorReady"]["status"] == "True"
    assert got["status"]["observedGeneration"] == 1
    assert got["status"]["url"] == "http://flowers-st.example.invalid"
    status_managers = {m["manager"]: m.get("subresource") for m in got["metadata"]["managedFields"]}
    assert status_managers["declserve-test-controller"] == "status"

    # the status schema is enforced too: a condition without status is rejected
    bad = json.loads(json.dumps(status_apply))
    del bad["status"]["conditions"][1]["status"]
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object_status(
            *ISVC[:2],
            ns,
            ISVC[2],
            "flowers-st",
            bad,
            field_manager="declserve-test-controller",
            force=True,
            _content_type=APPLY,
        )
    assert err.value.status == 422
    assert "status.conditions[1].status" in _status_of(err.value)["message"]

    # a spec change bumps generation; the controller's observedGeneration is now stale
    custom.patch_namespaced_custom_object(
        *ISVC[:2], ns, ISVC[2], "flowers-st", {"spec": {"predictor": {"maxReplicas": 4}}}
    )
    got = custom.get_namespaced_custom_object(*ISVC[:2], ns, ISVC[2], "flowers-st")
    assert got["metadata"]["generation"] == 2
    assert got["status"]["observedGeneration"] == 1
    assert {c["type"] for c in got["status"]["conditions"]} == {"Ready", "PredictorReady"}
