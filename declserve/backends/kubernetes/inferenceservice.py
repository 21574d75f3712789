"""KServe InferenceServices for `tool: kserve` servings (pure): the object declserve applies,
what of a live one it compares, and whether it is healthy the way Argo CD judges one.

The object is written in the form KServe's defaulting webhook stores
(`predictor.model.modelFormat.name: tensorflow`, the `Standard`/`Knative` spelling of the mode),
never the legacy `predictor.tensorflow`: the webhook rewrites that, and the fields declserve
applied would then be missing for ever, a permanent diff. What the webhook and the controller
add (the `modelFormat` annotation, `model.name: ""`, the finalizer, defaulted container names)
is owned by nobody or by the controller, and the essence reads only the paths declserve writes.
Requests are always set: the runtime's default requests (1 CPU, 2Gi) would otherwise be merged
with the spec's limits and the Deployment refused when the limits are smaller.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from declserve.backends.kubernetes import essence as E
from declserve.backends.kubernetes import logsink
from declserve.backends.kubernetes import manifests as M
from declserve.backends.kubernetes.settings import KubernetesSettings
from declserve.desired import DesiredServing
from declserve.live import HealthStatus
from declserve.spec import DesiredState, format_cpu, format_memory, parse_cpu, parse_memory

Obj = dict[str, Any]
GROUP = "serving.kserve.io"
VERSION = "v1beta1"
PLURAL = "inferenceservices"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "InferenceService"
ANN_MODE = "serving.kserve.io/deploymentMode"
ANN_STOP = "serving.kserve.io/stop"
ANN_ARTIFACT = "declserve.io/artifact"
# A digest of what declserve wrote: KServe copies an InferenceService's annotations onto the
# Deployments it makes, so a Deployment carrying it was made from this very spec.
ANN_SPEC_HASH = "declserve.io/spec-hash"
MODEL_FORMAT = "tensorflow"
TRANSFORMER_CONTAINER = "kserve-container"  # the name KServe's webhook gives it otherwise
TRANSFORMER_MOUNT = "/mnt/transformer"
# The reference's fine-grained logging modes, in KServe's logger terms.
LOGGER_MODES = {"all": "all", "model-inputs": "request", "predictions": "response"}
# Argo CD's rule: every condition True except this one, which means stopped, not broken.
STOPPED_CONDITION = "Stopped"
RUNTIME_REST_PORT = 8080  # KServe's TensorFlow runtime: --rest_api_port=8080


@dataclass(frozen=True)
class TransformerShape:
    image: str
    script: str  # the script's file name inside the artifact's transformer/ directory
    instances: int
    cpu: str
    memory: str


@dataclass(frozen=True)
class KServeShape:
    """A kserve serving in the backend's neutral terms."""

    name: str
    model: str
    version: int
    artifact: int
    storage_uri: str
    instances: int
    max_instances: int
    running: bool
    runtime_version: str
    cpu: str
    memory: str
    mode: str  # Standard | Knative
    gpus: int = 0
    batcher: dict[str, int] | None = None
    logger: dict[str, str] | None = None  # mode, url
    transformer: TransformerShape | None = None
    labels: dict[str, str] = field(default_factory=dict)
    protected: bool = False


def runtime_version(image: str, gpus: int) -> str:
    """The image's tag, with `-gpu` when GPUs are asked for (KServe picks the image by it)."""
    last = image.rsplit("/", 1)[-1]
    tag = last.split("@", 1)[0].split(":", 1)[1] if ":" in last.split("@", 1)[0] else "latest"
    return f"{tag}-gpu" if gpus and not tag.endswith("-gpu") else tag


def storage_uri(s: KubernetesSettings, relative: str) -> str:
    """`pvc://<claim>/<path>`: KServe mounts the claim itself, no storage initializer runs."""
    inside = "/".join(p for p in (s.models_sub_path.strip("/"), relative.strip("/")) if p)
    return f"pvc://{s.models_claim}/{inside}"


def batcher(parameters: dict[str, Any] | None) -> dict[str, int] | None:
    """KServe's batcher from TensorFlow Serving's batching parameters (the two it has)."""
    if parameters is None:
        return None
    out = {}
    if "max_batch_size" in parameters:
        out["maxBatchSize"] = int(parameters["max_batch_size"])
    if "batch_timeout_micros" in parameters:  # KServe counts milliseconds
        out["maxLatency"] = max(1, math.ceil(int(parameters["batch_timeout_micros"]) / 1000))
    return out


def _resources(cpu: str, memory: str, gpus: int) -> Obj:
    limits: Obj = {"cpu": cpu, "memory": memory}
    if gpus:
        limits[M.GPU_RESOURCE] = str(gpus)
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": limits}


def _annotations(shape: KServeShape) -> dict[str, str]:
    out = {
        ANN_MODE: shape.mode,
        M.ANN_VERSION: str(shape.version),
        ANN_ARTIFACT: str(shape.artifact),
        M.ANN_INSTANCES: str(shape.instances),
        M.ANN_LABEL_KEYS: ",".join(sorted(shape.labels)),
    }
    if not shape.running:
        out[ANN_STOP] = "true"
    if shape.protected:
        out[M.ANN_PROTECTED] = "true"
    return out


def _transformer(s: KubernetesSettings, shape: KServeShape) -> Obj:
    t = shape.transformer
    assert t is not None
    folder = shape.storage_uri.removeprefix(f"pvc://{s.models_claim}/") + "/transformer"
    return {
        "minReplicas": t.instances,
        "maxReplicas": max(t.instances, 1),
        "containers": [{
            "name": TRANSFORMER_CONTAINER,
            "image": t.image,
            "imagePullPolicy": s.pull_policy,
            # KServe appends --model_name, --predictor_host and --http_port
            "command": ["python3", f"{TRANSFORMER_MOUNT}/{t.script}"],
            "resources": _resources(t.cpu, t.memory, 0),
            "volumeMounts": [{"name": "transformer", "mountPath": TRANSFORMER_MOUNT,
                              "subPath": folder, "readOnly": True}],
        }],
        "volumes": [{"name": "transformer", "persistentVolumeClaim": {
            "claimName": s.models_claim, "readOnly": True}}],
    }


def inference_service(s: KubernetesSettings, shape: KServeShape) -> Obj:
    """The InferenceService declserve applies for a serving."""
    model: Obj = {
        "modelFormat": {"name": MODEL_FORMAT},
        "runtimeVersion": shape.runtime_version,
        "storageUri": shape.storage_uri,
        "resources": _resources(shape.cpu, shape.memory, shape.gpus),
        # As on the kubernetes tool: a pod is ready only once it serves its pinned version
        # (KServe's runtime names the model after the InferenceService), and it keeps
        # answering for a moment after it is told to stop, until kube-proxy has dropped it.
        "env": [{"name": M.VERSION_ENV, "value": str(shape.version)}],
        "readinessProbe": {
            "exec": {"command": M.readiness_command(shape.name, RUNTIME_REST_PORT)},
            "periodSeconds": 2, "timeoutSeconds": 5, "failureThreshold": 3,
        },
    }
    if shape.logger is not None or shape.batcher is not None:
        # KServe's agent sidecar (logger, batcher) copies the predictor's probe into its own
        # SERVING_READINESS_PROBE, which must be HTTP or TCP: with an exec probe v0.20.0 starts
        # it without one and it exits at once. The version's own status URL is the closest:
        # it answers 200 while that version still loads, so such a pod is ready earlier.
        model["readinessProbe"] = {
            "httpGet": {"path": f"/v1/models/{shape.name}/versions/{shape.version}",
                        "port": RUNTIME_REST_PORT},
            "periodSeconds": 2, "timeoutSeconds": 5, "failureThreshold": 3,
        }
    if s.pre_stop_seconds:
        model["lifecycle"] = {"preStop": {"sleep": {"seconds": s.pre_stop_seconds}}}
    predictor: Obj = {
        "minReplicas": shape.instances,
        "maxReplicas": shape.max_instances,
        "model": model,
    }
    if shape.batcher is not None:
        predictor["batcher"] = dict(shape.batcher)
    if shape.logger is not None:
        predictor["logger"] = dict(shape.logger)
    spec: Obj = {"predictor": predictor}
    if shape.transformer is not None:
        spec["transformer"] = _transformer(s, shape)
    annotations = _annotations(shape)
    labels = {**shape.labels, M.LABEL_MANAGED: M.MANAGER_VALUE, **M.selector(s, shape.name)}
    digest = json.dumps({"spec": spec, "annotations": annotations, "labels": labels},
                        sort_keys=True)
    annotations[ANN_SPEC_HASH] = hashlib.sha256(digest.encode()).hexdigest()[:16]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": shape.name,
            "namespace": s.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }


# ---- what of a live one declserve compares --------------------------------------------------
def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _number(value: str | None) -> int | str | None:
    return int(value) if value is not None and value.isdigit() else value


def _quantities(resources: Any) -> Obj:
    """Requests and limits with quantities in one spelling (`1500m` = `1.5`, `1024Mi` = `1Gi`)."""
    out: Obj = {}
    for part in ("requests", "limits"):
        values = _get(resources, part) or {}
        norm: Obj = {}
        for key, value in values.items():
            try:
                if key == "cpu":
                    norm[key] = format_cpu(parse_cpu(value))
                elif key == "memory":
                    norm[key] = format_memory(parse_memory(value))
                else:
                    norm[key] = str(value)
            except ValueError:
                norm[key] = value  # not ours to judge: shown as it is
        out[part] = norm
    return out


def essence(obj: Obj) -> Obj:
    """The fields declserve writes, read from an applied object or a live one alike, so that
    what the webhook or the controller add never shows as a change."""
    meta = obj.get("metadata") or {}
    ann = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    keys = [k for k in (ann.get(M.ANN_LABEL_KEYS) or "").split(",") if k]
    predictor = _get(obj, "spec", "predictor") or {}
    model = predictor.get("model") or {}
    out: Obj = {
        "state": "stopped" if ann.get(ANN_STOP) == "true" else "running",
        "mode": ann.get(ANN_MODE),
        "model": {"version": _number(ann.get(M.ANN_VERSION)),
                  "format": _get(model, "modelFormat", "name"),
                  "runtimeVersion": model.get("runtimeVersion"),
                  "storageUri": model.get("storageUri")},
        "artifact": ann.get(ANN_ARTIFACT),
        "instances": predictor.get("minReplicas"),
        "maxInstances": predictor.get("maxReplicas"),
        "resources": _quantities(model.get("resources")),
        "batcher": predictor.get("batcher"),
        "logger": predictor.get("logger"),
        "labels": {k: labels.get(k) for k in keys},
        "protected": ann.get(M.ANN_PROTECTED) == "true",
    }
    transformer = _get(obj, "spec", "transformer")
    if transformer is None:
        out["transformer"] = None
    else:
        container: Obj = next(iter(transformer.get("containers") or ()), {})
        out["transformer"] = {
            "instances": transformer.get("minReplicas"),
            "image": container.get("image"),
            "command": container.get("command"),
            "resources": _quantities(container.get("resources")),
            "mounts": [(m.get("subPath"), m.get("mountPath"))
                       for m in container.get("volumeMounts") or ()],
        }
    return out


# ---- health, as Argo CD judges an InferenceService ------------------------------------------
def health(obj: Obj, deployment_rolled_out: bool | None = None) -> HealthStatus:
    """Ready only when the status is for the current generation, every condition but
    `Stopped` is True and the model is `UpToDate`; `Stopped: True` is stopped, not broken.
    In Standard mode KServe says Ready before its Deployment rolled out, and its
    `observedGeneration` is the Deployment's, not the InferenceService's:
    `deployment_rolled_out` (None where there is no Deployment to ask) answers instead."""
    status = obj.get("status") or {}
    generation = _get(obj, "metadata", "generation")
    seen = status.get("observedGeneration")
    if deployment_rolled_out is None and seen is not None and generation is not None \
            and seen != generation:
        return HealthStatus.progressing(
            f"KServe has not seen generation {generation} yet (status is for {seen})")
    conditions = {c.get("type"): c for c in status.get("conditions") or ()}
    if not conditions:
        return HealthStatus.progressing("KServe has reported no condition yet")
    stopped = conditions.get(STOPPED_CONDITION, {}).get("status") == "True"
    if stopped:
        return HealthStatus.ready()
    failed = [c for t, c in sorted(conditions.items()) if t != STOPPED_CONDITION
              and c.get("status") == "False"]
    transition = _get(status, "modelStatus", "transitionStatus")
    if transition in ("BlockedByFailedLoad", "InvalidSpec"):
        info = _get(status, "modelStatus", "lastFailureInfo") or {}
        why = info.get("message") or info.get("reason") or ""
        return HealthStatus.degraded(f"model {transition}" + (f": {why}" if why else ""))
    if failed:
        c = failed[0]
        why = c.get("message") or c.get("reason") or "False"
        return HealthStatus.degraded(f"condition {c.get('type')}: {why}"[:300])
    pending = [t for t, c in sorted(conditions.items()) if t != STOPPED_CONDITION
               and c.get("status") != "True"]
    if pending:
        return HealthStatus.progressing(f"condition {pending[0]} is not True yet")
    if transition != "UpToDate":
        return HealthStatus.progressing(f"model status is {transition or 'not reported'}")
    if deployment_rolled_out is False:
        return HealthStatus.progressing("its predictor Deployment is still rolling out")
    return HealthStatus.ready()


def shape_of(
    d: DesiredServing, s: KubernetesSettings, artifact: int, artifact_path: str
) -> KServeShape:
    """A desired serving's shape, its artifact chosen (`artifact_path` relative to the
    registry root)."""
    spec = d.spec
    logging = spec.inference_logging
    t = spec.transformer
    return KServeShape(
        name=d.name,
        model=spec.model.name,
        version=d.version,
        artifact=artifact,
        storage_uri=storage_uri(s, artifact_path),
        instances=spec.instances,
        max_instances=spec.instance_bound,
        running=spec.state is DesiredState.RUNNING,
        runtime_version=runtime_version(s.image, spec.resources.gpus),
        cpu=spec.resources.cpu,
        memory=spec.resources.memory,
        mode=s.kserve_mode,
        gpus=spec.resources.gpus,
        batcher=batcher(spec.batching.parameters()) if spec.batching.enabled else None,
        # KServe's logger posts CloudEvents to declserve's logging sink in the namespace
        logger={"mode": LOGGER_MODES[logging.mode.value], "url": logsink.url(s)}
        if d.topic is not None and logging is not None else None,
        transformer=TransformerShape(
            image=s.transformer_image, script=PurePosixPath(t.script).name,
            instances=t.instances, cpu=t.resources.cpu, memory=t.resources.memory,
        ) if t is not None else None,
        labels=dict(d.serving.metadata.labels),
        protected=spec.protected,
    )




# Which field of the InferenceService each essence path comes from (who changed it).
SOURCES: tuple[tuple[str, str, str], ...] = (
    ("instances", KIND, "spec.predictor.minReplicas"),
    ("maxInstances", KIND, "spec.predictor.maxReplicas"),
    ("resources", KIND, "spec.predictor.model.resources"),
    ("model", KIND, "spec.predictor.model"),
    ("batcher", KIND, "spec.predictor.batcher"),
    ("logger", KIND, "spec.predictor.logger"),
    ("transformer", KIND, "spec.transformer"),
    ("labels", KIND, "metadata.labels"),
    ("state", KIND, f"metadata.annotations.{ANN_STOP}"),
    ("mode", KIND, f"metadata.annotations.{ANN_MODE}"),
    ("artifact", KIND, f"metadata.annotations.{ANN_ARTIFACT}"),
    ("protected", KIND, f"metadata.annotations.{M.ANN_PROTECTED}"),
)


def changed_by(obj: Obj) -> dict[str, str]:
    """Essence path → the manager other than declserve (kubectl edit, say) that last wrote it."""
    return E.changed_by({KIND: obj}, SOURCES)
