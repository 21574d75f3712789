"""The InferenceServices declserve writes, through a real API server with KServe's CRD.

`kube_apiserver` (tests/fixtures/kube.py) runs kube-apiserver and etcd with the
InferenceService CRD and no KServe controller or webhook: what is checked here is what the API
server itself does to the objects (the CRD's schema, its defaults, server-side apply and
managedFields), i.e. the stored object as the API server returns it. What KServe's webhook
and controller add on top is covered in tests/unit/test_kserve_inferenceservice.py from the
rewrites recorded in testinfra/kserve/NOTES.md.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from declserve.backends.kubernetes import inferenceservice as I
from declserve.backends.kubernetes.client import Kube
from declserve.backends.kubernetes.settings import KubernetesSettings
from declserve.desired import DesiredServing, ModelSource
from declserve.errors import Rejected
from declserve.spec import Serving

CYCLES = 10


@pytest.fixture
def kube(kube_apiserver: Any) -> Kube:
    namespace = f"isvc-{uuid.uuid4().hex[:8]}"
    settings = KubernetesSettings(
        project="p", namespace=namespace, image="declserve/tfserving-double:2.19.1",
        pull_policy="Never", service_type="ClusterIP", proxy_image="declserve/logproxy:x",
        pre_stop_seconds=2, ready_timeout=30, kubeconfig=str(kube_apiserver.kubeconfig),
        models_claim="models", kserve_mode="Knative",
    )
    k = Kube(settings)
    k._call("POST", "/api/v1/namespaces", "create a namespace",
            body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    return k


def desired(name: str, **spec: Any) -> DesiredServing:
    body = {"model": {"name": "mnist", "version": 1}, "tool": "kserve", **spec}
    serving = Serving.model_validate({"apiVersion": "declserve.io/v1", "kind": "Serving",
                                      "metadata": {"name": name}, "spec": body})
    logging = serving.spec.inference_logging
    topic = "p-t" if logging is not None else None
    return DesiredServing(serving, ModelSource("mnist", 1), f"{name}.yaml:1", topic, False)


SERVINGS = {
    "plain": {"instances": 2, "maxInstances": 4, "resources": {"cpu": "1500m",
                                                               "memory": "1024Mi"}},
    "zero": {"instances": 0},
    "logged": {"inferenceLogging": {"topic": "create", "mode": "predictions"},
               "batching": {"enabled": True, "maxBatchSize": 8}},
    "transformed": {"transformer": {"script": "Resources/t.py", "resources": {"cpu": 0.5}}},
    "stopped": {"state": "stopped"},
}


def manifest(kube: Kube, name: str) -> dict[str, Any]:
    d = desired(name, **SERVINGS[name])
    artifact = 1 if d.spec.transformer else 0
    where = f"Models/mnist/1/Artifacts/{artifact}"
    return I.inference_service(kube.settings, I.shape_of(d, kube.settings, artifact, where))


@pytest.mark.parametrize("name", sorted(SERVINGS))
def test_the_stored_object_reads_back_as_applied_over_ten_cycles(kube: Kube, name: str) -> None:
    obj = manifest(kube, name)
    first = kube.apply(obj)
    assert I.essence(first) == I.essence(obj)
    assert I.changed_by(first) == {}
    owners = [e["manager"] for e in first["metadata"]["managedFields"]]
    assert owners == ["declserve"]
    for _ in range(CYCLES):
        again = kube.apply(manifest(kube, name))
        assert I.essence(again) == I.essence(obj)
        # nothing changed: the API server did not even write
        assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
        assert again["metadata"]["generation"] == first["metadata"]["generation"]


def test_scale_to_zero_is_accepted_by_the_crds_schema(kube: Kube) -> None:
    stored = kube.apply(manifest(kube, "zero"))
    assert stored["spec"]["predictor"]["minReplicas"] == 0
    assert stored["metadata"]["annotations"][I.ANN_MODE] == "Knative"


def test_a_value_the_crd_refuses_is_one_sentence(kube: Kube) -> None:
    obj = manifest(kube, "plain")
    obj["spec"]["predictor"]["logger"] = {"mode": "everything"}
    with pytest.raises(Rejected, match="refused to apply InferenceService plain.*mode"):
        kube.apply(obj)
    assert kube.get("InferenceService", "plain") is None  # nothing was stored


def test_an_edit_by_another_manager_is_named_and_apply_takes_it_back(
    kube: Kube, kube_apiserver: Any
) -> None:
    obj = manifest(kube, "plain")
    kube.apply(obj)
    edited = kube.patch("InferenceService", "plain",
                        {"spec": {"predictor": {"minReplicas": 3}}}, manager="kubectl-edit")
    want, have = I.essence(obj), I.essence(edited)
    assert [k for k in want if want[k] != have[k]] == ["instances"]
    who = I.changed_by(edited)
    assert list(who) == ["instances"] and who["instances"].startswith("kubectl-edit at 20")

    repaired = kube.apply(obj)  # forced: the field is taken back from kubectl-edit
    assert I.essence(repaired) == want
    assert I.changed_by(repaired) == {}
    assert repaired["spec"]["predictor"]["minReplicas"] == 2
