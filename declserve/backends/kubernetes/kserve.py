"""`tool: kserve` servings on the Kubernetes backend: an InferenceService each, its artifact in
the registry, its steps and its live view.

An artifact is picked from the registry alone (plan never writes one): MODEL-ONLY (0) for a
serving without a transformer; with one, the artifact of that model version that already holds
the same script (same path, same bytes), or else the next number, marked new, which apply
writes before the InferenceService points at it. So two servings without a transformer share
artifact 0, and a changed script or model version gets the next number. The essence shows it
as `artifact: MODEL-ONLY`, `artifact: 3` or `artifact: 4 (new)`.
"""

from __future__ import annotations

from typing import Any

from declserve import artifacts as A
from declserve.backends.kubernetes import inferenceservice as I
from declserve.backends.kubernetes.settings import KubernetesSettings
from declserve.desired import DesiredServing
from declserve.live import HealthStatus
from declserve.plan import Step
from declserve.registry import Registry
from declserve.spec import Tool

Obj = dict[str, Any]
TOOL = Tool.KSERVE.value
APPLY = "apply"
WRITE_ARTIFACT = "write artifact"
WAIT = "wait until ready:"
DELETE = "delete"
NEW = " (new)"


def is_kserve(d: DesiredServing) -> bool:
    return d.spec.tool is Tool.KSERVE


def pick(registry: Registry, d: DesiredServing) -> A.ArtifactChoice:
    """The artifact this serving uses: see the module's docstring."""
    return A.holding(registry, d.spec.model.name, d.version, _script(d))


def _script(d: DesiredServing) -> str | None:
    return d.spec.transformer.script if d.spec.transformer else None


def artifact_label(number: int | str | None, new: bool = False) -> str | None:
    if number is None:
        return None
    label = "MODEL-ONLY" if str(number) == str(A.MODEL_ONLY) else str(number)
    return label + (NEW if new else "")


def _rendered(
    s: KubernetesSettings, registry: Registry, d: DesiredServing
) -> tuple[A.ArtifactChoice, Obj]:
    choice = pick(registry, d)
    where = A.relative_path(registry, d.spec.model.name, d.version, choice.number)
    return choice, I.inference_service(s, I.shape_of(d, s, choice.number, where))


def manifest(s: KubernetesSettings, registry: Registry, d: DesiredServing) -> Obj:
    """The InferenceService apply writes, with the artifact picked now."""
    return _rendered(s, registry, d)[1]


def desired_essence(s: KubernetesSettings, registry: Registry, d: DesiredServing) -> Obj:
    choice, obj = _rendered(s, registry, d)
    essence = I.essence(obj)
    essence["tool"] = TOOL
    essence["artifact"] = artifact_label(choice.number, choice.new)
    return essence


def live_essence(obj: Obj) -> Obj:
    essence = I.essence(obj)
    essence["tool"] = TOOL
    essence["artifact"] = artifact_label(essence["artifact"])
    return essence


def write_artifact(registry: Registry, d: DesiredServing) -> A.ArtifactInfo:
    return A.write(registry, d.spec.model.name, d.version, pick(registry, d), _script(d))


def live_health(obj: Obj, deployments: list[Obj | None], standard: bool) -> HealthStatus:
    """Argo CD's rule; in Standard mode the Deployments KServe made must have rolled out too,
    with at least the instances asked for ready: KServe reports Ready before either (its
    Deployment starts at one replica and the HPA it makes raises that to minReplicas later)."""
    rolled: bool | None = None
    if standard and I.ANN_STOP not in ((obj.get("metadata") or {}).get("annotations") or {}):
        spec = obj.get("spec") or {}
        wanted = [(spec.get(c) or {}).get("minReplicas") or 1 for c in ("predictor", "transformer")
                  if spec.get(c) is not None]
        digest = ((obj.get("metadata") or {}).get("annotations") or {}).get(I.ANN_SPEC_HASH)
        rolled = len(deployments) == len(wanted) and all(
            d is not None and rolled_out(d)
            and ((d["metadata"].get("annotations") or {}).get(I.ANN_SPEC_HASH) == digest)
            and ((d.get("status") or {}).get("readyReplicas") or 0) >= n
            for d, n in zip(deployments, wanted, strict=True))
    return I.health(obj, rolled)


def rolled_out(dep: Obj) -> bool:
    meta, spec, st = dep["metadata"], dep.get("spec") or {}, dep.get("status") or {}
    want = spec.get("replicas", 1)
    return bool(
        st.get("observedGeneration", 0) >= meta.get("generation", 0)
        and st.get("updatedReplicas", 0) == want
        and st.get("readyReplicas", 0) == want
        and st.get("availableReplicas", 0) == want
        and st.get("replicas", 0) == want
    )


def component_deployments(obj: Obj) -> list[str]:
    """The Deployments KServe makes for an InferenceService in Standard mode."""
    name = obj["metadata"]["name"]
    names = [f"{name}-predictor"]
    if ((obj.get("spec") or {}).get("transformer")) is not None:
        names.append(f"{name}-transformer")
    return names


# ---- steps ------------------------------------------------------------------------------
def _target(name: str) -> str:
    return f"{I.KIND} {name}"


SINK = "logging sink"


def sink_step(why: str) -> Step:
    return Step(APPLY, SINK, why)


def apply_steps(essence: Obj, name: str, what: str, live_logs: bool = False) -> tuple[Step, ...]:
    """`live_logs`: the live serving logs now (the sink forgets it after, when it stops)."""
    steps = []
    logs = essence.get("logger") is not None
    if logs:  # the sink knows the serving before KServe's logger posts anything
        steps.append(sink_step(f"records of {name} to the topic"))
    artifact = str(essence.get("artifact") or "")
    if artifact.endswith(NEW):
        model = essence["model"]
        steps.append(Step(WRITE_ARTIFACT, artifact.removesuffix(NEW),
                          f"model version {model['version']}"
                          + (", transformer script" if essence.get("transformer") else "")))
    steps.append(Step(APPLY, _target(name), what))
    if essence["state"] == "running":
        steps.append(Step(WAIT, _target(name),
                          "every condition True, the model UpToDate, its pods rolled out"))
    if live_logs and not logs:
        steps.append(sink_step(f"without {name}"))
    return tuple(steps)


def delete_steps(name: str, live_logs: bool = False) -> tuple[Step, ...]:
    steps = [Step(DELETE, _target(name), "KServe removes its Deployments and Services")]
    if live_logs:
        steps.append(sink_step(f"without {name}"))
    return tuple(steps)
