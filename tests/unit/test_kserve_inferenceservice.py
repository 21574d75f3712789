"""KServe servings (pure): the spec's rules, the InferenceService declserve writes, the essence
it compares (what KServe adds never shows), and health as Argo CD judges an InferenceService."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from declserve.backends.kubernetes import inferenceservice as I
from declserve.backends.kubernetes import kserve as K
from declserve.backends.kubernetes.planner import KubernetesPlanner
from declserve.backends.kubernetes.settings import KubernetesSettings
from declserve.desired import DesiredServing, ModelSource
from declserve.live import Health, LiveResource
from declserve.loader import collect
from declserve.plan import Action, FieldChange
from declserve.registry import Registry
from declserve.spec import Serving

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "tests" / "data" / "registry"
SETTINGS = KubernetesSettings(
    project="p", namespace="ns", image="declserve/tfserving-double:2.19.1",
    pull_policy="Never", service_type="ClusterIP", proxy_image="declserve/logproxy:abc",
    pre_stop_seconds=2, ready_timeout=30, models_claim="models", models_sub_path="reg",
    transformer_image="declserve/kserve-transformer:t1",
)


def desired(name: str = "m", **spec: Any) -> DesiredServing:
    body: dict[str, Any] = {"model": {"name": "mnist", "version": 2}, "tool": "kserve", **spec}
    serving = Serving.model_validate({"apiVersion": "declserve.io/v1", "kind": "Serving",
                                      "metadata": {"name": name, "labels": {"team": "a"}},
                                      "spec": body})
    logging = serving.spec.inference_logging
    topic = "p-m-inference" if logging is not None and logging.enabled else None
    return DesiredServing(serving, ModelSource("mnist", 2), "m.yaml:1", topic, topic is not None)


def rendered(d: DesiredServing, artifact: int = 0) -> dict[str, Any]:
    shape = I.shape_of(d, SETTINGS, artifact, f"Models/mnist/2/Artifacts/{artifact}")
    return I.inference_service(SETTINGS, shape)


# ---- the spec's rules ---------------------------------------------------------------------
def test_max_instances_defaults_to_instances_and_is_kserve_only() -> None:
    assert desired(instances=3).spec.instance_bound == 3
    assert desired(instances=0).spec.instance_bound == 1
    assert desired(instances=2, maxInstances=5).spec.instance_bound == 5
    with pytest.raises(ValueError, match="must be at least instances"):
        desired(instances=3, maxInstances=2)
    with pytest.raises(ValueError, match="needs tool 'kserve'"):
        desired(tool="default", maxInstances=2)


def test_batching_beyond_what_kserves_batcher_takes_is_refused() -> None:
    ok = desired(batching={"enabled": True, "maxBatchSize": 16, "batchTimeoutMicros": 2500})
    assert rendered(ok)["spec"]["predictor"]["batcher"] == {"maxBatchSize": 16, "maxLatency": 3}
    with pytest.raises(ValueError, match="maxBatchSize and batchTimeoutMicros only"):
        desired(batching={"enabled": True, "numBatchThreads": 2})


def _project(tmp_path: Path, kserve: str, claim: bool = True) -> Path:
    models = "models: {claim: models}" if claim else ""
    (tmp_path / "declserve.yaml").write_text(
        "apiVersion: declserve.io/v1\nkind: Project\nmetadata: {name: p}\nspec:\n"
        f"  registry: {REGISTRY}\n"
        f"  backend:\n    type: kubernetes\n    {models}\n    kserve: {kserve}\n")
    (tmp_path / "zero.yaml").write_text(
        "apiVersion: declserve.io/v1\nkind: Serving\nmetadata: {name: z}\nspec:\n"
        "  model: {name: mnist, version: 1}\n  tool: kserve\n  instances: 0\n")
    return tmp_path


def test_scale_to_zero_in_standard_mode_is_refused_at_its_line(tmp_path: Path) -> None:
    _, problems = collect(_project(tmp_path, "{deploymentMode: Standard}"))
    assert [(Path(p.file).name, p.line, p.column, p.field) for p in problems] == [
        ("zero.yaml", 7, 14, "spec.instances")]
    assert "needs KServe's Knative mode" in problems[0].message
    assert "Standard mode KServe runs one pod anyway" in problems[0].message


def test_scale_to_zero_in_knative_mode_is_accepted(tmp_path: Path) -> None:
    loaded, problems = collect(_project(tmp_path, "{deploymentMode: Knative}"))
    assert problems == []
    assert loaded is not None
    assert [s.serving.spec.instances for s in loaded.servings] == [0]


def test_kserve_without_a_models_claim_is_refused(tmp_path: Path) -> None:
    _, problems = collect(_project(tmp_path, "{deploymentMode: Knative}", claim=False))
    assert [(p.field, p.line) for p in problems] == [("spec.tool", 6)]
    assert "needs backend.models.claim" in problems[0].message


# ---- the object ---------------------------------------------------------------------------
def test_the_object_is_in_the_form_kserves_webhook_stores() -> None:
    obj = rendered(desired(instances=2, maxInstances=4,
                           resources={"cpu": "1500m", "memory": "1024Mi"}))
    predictor = obj["spec"]["predictor"]
    assert "tensorflow" not in predictor  # the legacy form, which the webhook rewrites
    assert predictor["model"]["modelFormat"] == {"name": "tensorflow"}
    assert predictor["model"]["storageUri"] == "pvc://models/reg/Models/mnist/2/Artifacts/0"
    assert predictor["model"]["runtimeVersion"] == "2.19.1"
    assert predictor["model"]["resources"] == {
        "requests": {"cpu": "1500m", "memory": "1Gi"}, "limits": {"cpu": "1500m",
                                                                  "memory": "1Gi"}}
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 4)
    ann = obj["metadata"]["annotations"]
    assert ann[I.ANN_MODE] == "Standard" and I.ANN_STOP not in ann
    assert ann[I.ANN_ARTIFACT] == "0"
    assert obj["metadata"]["labels"]["team"] == "a"
    assert "transformer" not in obj["spec"] and "logger" not in predictor


def test_gpus_pick_the_gpu_runtime_and_a_stop_is_kserves_annotation() -> None:
    obj = rendered(desired(resources={"gpus": 1}, state="stopped"))
    model = obj["spec"]["predictor"]["model"]
    assert model["runtimeVersion"] == "2.19.1-gpu"
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert obj["metadata"]["annotations"][I.ANN_STOP] == "true"
    assert I.runtime_version("reg.example:5000/tf/serving", 0) == "latest"
    assert I.runtime_version("tf/serving:2.19.1-gpu", 1) == "2.19.1-gpu"


@pytest.mark.parametrize(("mode", "kserve"), [("all", "all"), ("model-inputs", "request"),
                                              ("predictions", "response")])
def test_the_references_logging_modes_are_kserves_logger_modes(mode: str, kserve: str) -> None:
    obj = rendered(desired(inferenceLogging={"topic": "create", "mode": mode}))
    assert obj["spec"]["predictor"]["logger"] == {
        "mode": kserve, "url": "http://p-logsink.ns.svc.cluster.local/"}


def test_a_transformer_runs_its_script_from_the_artifact() -> None:
    obj = rendered(desired(transformer={"script": "Resources/scale.py", "instances": 2,
                                        "resources": {"cpu": 0.5, "memory": "256Mi"}}),
                   artifact=3)
    t = obj["spec"]["transformer"]
    (c,) = t["containers"]
    assert (t["minReplicas"], c["image"]) == (2, "declserve/kserve-transformer:t1")
    assert c["command"] == ["python3", "/mnt/transformer/scale.py"]
    assert c["volumeMounts"][0]["subPath"] == "reg/Models/mnist/2/Artifacts/3/transformer"
    assert t["volumes"][0]["persistentVolumeClaim"]["claimName"] == "models"
    assert c["resources"]["requests"] == {"cpu": "500m", "memory": "256Mi"}


# ---- the essence --------------------------------------------------------------------------
def as_kserve_stores(obj: dict[str, Any]) -> dict[str, Any]:
    """What the webhook and the controller make of an applied object (kserve#2232, the
    transformer quantity drift of argo-cd#12463)."""
    live = copy.deepcopy(obj)
    live["metadata"]["annotations"]["modelFormat"] = "tensorflow"
    live["metadata"]["finalizers"] = ["inferenceservice.finalizers"]
    live["metadata"]["generation"] = 1
    live["spec"]["predictor"]["model"]["name"] = ""
    live["spec"]["predictor"]["model"]["protocolVersion"] = "v1"
    res = live["spec"]["predictor"]["model"]["resources"]
    res["limits"]["cpu"] = "1.5" if res["limits"]["cpu"] == "1500m" else res["limits"]["cpu"]
    res["requests"]["memory"] = "1024Mi" if res["requests"]["memory"] == "1Gi" else "x"
    if "transformer" in live["spec"]:
        live["spec"]["transformer"]["containers"][0]["resources"]["limits"]["cpu"] = "0.5"
    live["status"] = {"observedGeneration": 1}
    return live


def test_what_kserve_adds_and_respells_is_no_change() -> None:
    d = desired(resources={"cpu": "1500m", "memory": "1Gi"},
                transformer={"script": "Resources/scale.py", "resources": {"cpu": "500m"}})
    obj = rendered(d, artifact=1)
    live = as_kserve_stores(obj)
    assert live != obj
    assert I.essence(live) == I.essence(obj)


@pytest.mark.parametrize(("edit", "path"), [
    (lambda o: o["spec"]["predictor"].update(minReplicas=5), "instances"),
    (lambda o: o["spec"]["predictor"]["model"].update(storageUri="pvc://x/y"), "model"),
    (lambda o: o["spec"]["predictor"]["model"]["resources"]["limits"].update(cpu="2"),
     "resources"),
    (lambda o: o["metadata"]["annotations"].update({I.ANN_STOP: "true"}), "state"),
    (lambda o: o["metadata"]["labels"].update(team="b"), "labels"),
])
def test_an_edit_of_a_field_declserve_writes_is_a_change(edit: Any, path: str) -> None:
    obj = rendered(desired())
    live = as_kserve_stores(obj)
    edit(live)
    want, have = I.essence(obj), I.essence(live)
    assert [k for k in want if want[k] != have[k]] == [path]


def test_who_changed_a_field_comes_from_managed_fields() -> None:
    live = as_kserve_stores(rendered(desired()))
    live["metadata"]["managedFields"] = [
        {"manager": "declserve", "operation": "Apply", "fieldsV1": {
            "f:spec": {"f:predictor": {"f:minReplicas": {}}}}},
        {"manager": "manager", "operation": "Update", "time": "2026-12-02T10:00:00Z",
         "fieldsV1": {"f:metadata": {"f:finalizers": {}}}},
        {"manager": "kubectl-edit", "operation": "Update", "time": "2026-12-02T11:00:00Z",
         "fieldsV1": {"f:spec": {"f:predictor": {"f:minReplicas": {}}}}},
    ]
    assert I.changed_by(live) == {"instances": "kubectl-edit at 2026-12-02T11:00:00Z"}


# ---- health -------------------------------------------------------------------------------
def status(*conditions: tuple[str, str], transition: str = "UpToDate", seen: int = 1,
           **extra: Any) -> dict[str, Any]:
    return {"metadata": {"generation": 1}, "status": {
        "observedGeneration": seen,
        "conditions": [{"type": t, "status": v, "reason": f"{t}Reason"} for t, v in conditions],
        "modelStatus": {"transitionStatus": transition, **extra}}}


READY = (("IngressReady", "True"), ("PredictorReady", "True"), ("Ready", "True"))


@pytest.mark.parametrize(("obj", "rolled", "state", "reason"), [
    (status(*READY), None, Health.READY, ""),
    (status(*READY), True, Health.READY, ""),
    (status(*READY), False, Health.PROGRESSING, "still rolling out"),  # kserve#4626
    (status(*READY, seen=0), None, Health.PROGRESSING, "generation 1"),
    (status(*READY, transition="InProgress"), None, Health.PROGRESSING, "InProgress"),
    (status(("PredictorReady", "Unknown"), ("Ready", "Unknown")), None, Health.PROGRESSING,
     "PredictorReady"),
    (status(("PredictorReady", "False"), ("Ready", "False")), None, Health.DEGRADED,
     "PredictorReadyReason"),
    (status(("Ready", "True"), transition="BlockedByFailedLoad",
            lastFailureInfo={"message": "no servable"}), None, Health.DEGRADED, "no servable"),
    (status(("Stopped", "True"), ("Ready", "False")), None, Health.READY, ""),
    ({"metadata": {"generation": 1}}, None, Health.PROGRESSING, "no condition"),
])
def test_health_is_argo_cds_rule(obj: dict[str, Any], rolled: bool | None, state: Health,
                                 reason: str) -> None:
    h = I.health(obj, rolled)
    assert h.state is state and reason in h.reason


def test_in_standard_mode_the_deployments_answer_for_the_generation() -> None:
    # KServe writes its Deployment's observedGeneration into the InferenceService's status
    assert I.health(status(*READY, seen=3), True).state is Health.READY
    assert I.health(status(*READY, seen=3), None).state is Health.PROGRESSING


def deployment(digest: str | None, ready: int, replicas: int = 1) -> dict[str, Any]:
    return {"metadata": {"generation": 2, "annotations": {I.ANN_SPEC_HASH: digest}},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": 2, "updatedReplicas": replicas,
                       "readyReplicas": ready, "availableReplicas": ready,
                       "replicas": replicas}}


def test_kserves_deployments_must_carry_this_spec_and_the_instances_asked_for() -> None:
    obj = rendered(desired(instances=2, maxInstances=3))
    obj["status"] = status(*READY)["status"]
    digest = obj["metadata"]["annotations"][I.ANN_SPEC_HASH]
    assert K.live_health(obj, [deployment(digest, 2, 2)], True).state is Health.READY
    # the HPA has not raised the Deployment to minReplicas yet
    assert K.live_health(obj, [deployment(digest, 1)], True).state is Health.PROGRESSING
    # KServe has not rewritten the Deployment from this spec yet
    assert K.live_health(obj, [deployment("older", 2, 2)], True).state is Health.PROGRESSING
    assert K.live_health(obj, [None], True).state is Health.PROGRESSING
    assert K.live_health(obj, [], False).state is Health.READY  # Knative: KServe's word


def test_the_spec_digest_follows_every_written_field() -> None:
    one = rendered(desired())["metadata"]["annotations"][I.ANN_SPEC_HASH]
    assert rendered(desired())["metadata"]["annotations"][I.ANN_SPEC_HASH] == one
    assert rendered(desired(instances=2))["metadata"]["annotations"][I.ANN_SPEC_HASH] != one


# ---- artifacts and steps ------------------------------------------------------------------
def _registry(tmp_path: Path) -> Registry:
    version = tmp_path / "Models" / "mnist" / "2"
    (version / "variables").mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"pb")
    (version / "variables" / "variables.index").write_bytes(b"ix")
    (tmp_path / "Resources").mkdir()
    (tmp_path / "Resources" / "t.py").write_text("print('t')\n")
    return Registry(tmp_path)


def test_servings_pick_model_only_or_the_artifact_holding_their_script(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    plain = desired("p")
    with_t = desired("t", transformer={"script": "Resources/t.py"})
    assert (K.pick(registry, plain).number, K.pick(registry, plain).new) == (0, True)
    K.write_artifact(registry, plain)
    assert (K.pick(registry, plain).number, K.pick(registry, plain).new) == (0, False)
    assert (K.pick(registry, with_t).number, K.pick(registry, with_t).new) == (1, True)
    K.write_artifact(registry, with_t)
    assert K.desired_essence(SETTINGS, registry, with_t)["artifact"] == "1"
    (tmp_path / "Resources" / "t.py").write_text("print('changed')\n")
    assert K.desired_essence(SETTINGS, registry, with_t)["artifact"] == "2 (new)"
    assert K.desired_essence(SETTINGS, registry, plain)["artifact"] == "MODEL-ONLY"


def _live(essence: dict[str, Any]) -> LiveResource:
    return LiveResource("serving", "m", essence)


def test_the_steps_write_a_new_artifact_before_the_service_points_at_it(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    planner = KubernetesPlanner(SETTINGS, registry)
    d = desired(transformer={"script": "Resources/t.py"})
    (want,) = planner.desired([d])
    shape = planner.shape(want.resource, None, [])
    assert shape.action is Action.CREATE
    assert [(s.op, s.target) for s in shape.steps] == [
        ("write artifact", "1"), ("apply", "InferenceService m"),
        ("wait until ready:", "InferenceService m")]
    K.write_artifact(registry, d)
    (want,) = planner.desired([d])
    live = _live(K.live_essence(rendered(d, artifact=1)))
    assert want.resource.essence == live.essence  # written: nothing to do
    stopped = desired(state="stopped", transformer={"script": "Resources/t.py"})
    (stop,) = planner.desired([stopped])
    shape = planner.shape(stop.resource, live, [FieldChange("state", "running", "stopped")])
    assert shape.action is Action.STOP
    assert [s.op for s in shape.steps] == ["apply"]  # nothing to wait for


def test_changing_a_servings_tool_is_a_replace(tmp_path: Path) -> None:
    planner = KubernetesPlanner(SETTINGS, _registry(tmp_path))
    (want,) = planner.desired([desired()])
    was_default = _live({"state": "running", "instances": 1, "model": {"version": 2}})
    shape = planner.shape(want.resource, was_default, [FieldChange("tool", None, "kserve")])
    assert shape.action is Action.REPLACE
    assert [s.op for s in shape.steps][:3] == ["delete", "delete", "delete"]
    assert shape.steps[3].op == "write artifact"
