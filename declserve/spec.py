"""The declarative spec: pydantic models for the kinds `Serving` and `Project`.

Every setting of a serving that the TensorFlow Model Serving page offers is a field here. Rules
that involve one document only live on the models; rules across documents (a `kserve` serving
needs a `kubernetes` backend, names unique in the project) live in `loader`. This module does no
I/O and knows nothing of YAML positions or backends.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

API_VERSION = "declserve.io/v1"

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A directory name under Models/: no separators, no leading dot, so it can never leave the root.
MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
KAFKA_TOPIC = r"^[A-Za-z0-9._-]{1,249}$"
LABEL_KEY = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
LABEL_VALUE = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"

MAX_INSTANCES = 1000

DnsLabel = Annotated[str, StringConstraints(pattern=DNS1123_LABEL, max_length=63)]
LabelKey = Annotated[str, StringConstraints(pattern=LABEL_KEY, max_length=253)]
LabelValue = Annotated[str, StringConstraints(pattern=LABEL_VALUE, max_length=63)]


class RuleError(ValueError):
    """A rule across fields, naming the field (relative to the model) the user should change."""

    def __init__(self, field: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.field = field


def _whole_numbers(value: Any) -> Any:
    """JSON Schema's `integer` is any number without a fraction, so 2.0 is the number 2 (2.5 and
    "2" are not); the specs take exactly what their published schema takes."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    return value


class StrictModel(BaseModel):
    """Unknown fields are errors, YAML keys are camelCase, and parsed specs never change.

    Strict, as the JSON Schema generated from these models is: no "2" for 2, no "yes" or 1 for
    true. Enum fields relax it only to take their values as strings.
    """

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        # camelCase only, as the schema says: `inference_logging` is an unknown field
        validate_by_alias=True,
        validate_by_name=False,
        frozen=True,
        strict=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _json_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: _whole_numbers(value) for key, value in data.items()}
        return data


class Tool(StrEnum):
    DEFAULT = "default"
    KSERVE = "kserve"


class DesiredState(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


class LoggingMode(StrEnum):
    ALL = "all"
    MODEL_INPUTS = "model-inputs"
    PREDICTIONS = "predictions"


_CPU_SUFFIX = {"m": Decimal("0.001"), "": Decimal(1)}
_MEM_SUFFIX = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([A-Za-z]*)$")


def parse_cpu(value: Any) -> Decimal:
    """A Kubernetes CPU quantity (`1`, `0.5`, `500m`) as a number of cores."""
    if isinstance(value, bool):
        raise ValueError("cpu must be a number of cores such as 1, 0.5 or '500m'")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError("cpu must be a finite number of cores")
        value = repr(value) if isinstance(value, float) else str(value)
    match = _QUANTITY.fullmatch(str(value))
    if not match or match.group(2) not in _CPU_SUFFIX:
        raise ValueError(f"cpu {value!r} is not a quantity such as 1, 0.5 or '500m'")
    cores = Decimal(match.group(1)) * _CPU_SUFFIX[match.group(2)]
    if cores <= 0 or cores > 1024:
        raise ValueError(f"cpu {value!r} must be more than 0 and at most 1024 cores")
    if cores != cores.quantize(Decimal("0.001")):
        raise ValueError(f"cpu {value!r} is finer than a millicore")
    return cores


def parse_memory(value: Any) -> int:
    """A Kubernetes memory quantity (`1Gi`, `512Mi`, `1G`, bytes) as a number of bytes."""
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError("memory must be a quantity such as '512Mi' or '1Gi'")
    match = _QUANTITY.fullmatch(str(value))
    if not match or match.group(2) not in _MEM_SUFFIX:
        raise ValueError(f"memory {value!r} is not a quantity such as '512Mi' or '1Gi'")
    try:
        amount = Decimal(match.group(1)) * _MEM_SUFFIX[match.group(2)]
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only plain decimals
        raise ValueError(f"memory {value!r} is not a number") from exc
    if amount != int(amount):
        raise ValueError(f"memory {value!r} is not a whole number of bytes")
    if amount < 6 * 2**20:
        raise ValueError(f"memory {value!r} is below the 6Mi that a container needs")
    if amount > 2**50:
        raise ValueError(f"memory {value!r} is more than 1Pi")
    return int(amount)


def format_cpu(cores: Decimal) -> str:
    """The canonical spelling of a CPU amount: whole cores as `2`, the rest in millicores."""
    if cores == cores.to_integral_value():
        return str(int(cores))
    return f"{int(cores * 1000)}m"


def format_memory(amount: int) -> str:
    """The canonical spelling of a memory amount: the largest binary unit that divides it."""
    for suffix in ("Pi", "Ti", "Gi", "Mi", "Ki"):
        if amount % _MEM_SUFFIX[suffix] == 0:
            return f"{amount // _MEM_SUFFIX[suffix]}{suffix}"
    return str(amount)


_CPU_SCHEMA = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0, "maximum": 1024},
        {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?m?$"},
    ]
}
_MEMORY_SCHEMA = {
    "anyOf": [
        {"type": "integer", "minimum": 6 * 2**20},
        {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?([kMGTP]|[KMGTP]i)?$"},
    ]
}


class Resources(StrictModel):
    """Limits of one replica; quantities are spelled as in Kubernetes."""

    cpu: Annotated[str, WithJsonSchema(_CPU_SCHEMA)] = Field(
        default="1", description="CPU cores, e.g. 1, 0.5 or '500m'."
    )
    memory: Annotated[str, WithJsonSchema(_MEMORY_SCHEMA)] = Field(
        default="1Gi", description="Memory, e.g. '512Mi' or '1Gi'."
    )
    gpus: int = Field(default=0, ge=0, le=16, description="Number of GPUs.")

    @field_validator("cpu", mode="before")
    @classmethod
    def _canonical_cpu(cls, value: Any) -> str:
        return format_cpu(parse_cpu(value))

    @field_validator("memory", mode="before")
    @classmethod
    def _canonical_memory(cls, value: Any) -> str:
        return format_memory(parse_memory(value))

    @property
    def cpu_cores(self) -> Decimal:
        return parse_cpu(self.cpu)

    @property
    def memory_bytes(self) -> int:
        return parse_memory(self.memory)


class ModelRef(StrictModel):
    """Which model of the registry, and which version of it, the serving serves."""

    name: Annotated[str, StringConstraints(pattern=MODEL_NAME, max_length=255)] = Field(
        description="Directory name under Models/ in the registry."
    )
    version: Annotated[int, Field(ge=1, le=2**31 - 1)] | Literal["latest"] = Field(
        description="A positive version number, or 'latest' (resolved and pinned in the plan)."
    )

    @field_validator("version", mode="before")
    @classmethod
    def _no_bool_or_float(cls, value: Any) -> Any:
        if isinstance(value, bool) or isinstance(value, float):
            raise ValueError("must be a positive whole number or 'latest'")
        return value


class Batching(StrictModel):
    """TensorFlow Serving's server-side batching; the parameters become its batching file."""

    enabled: bool = False
    max_batch_size: int | None = Field(default=None, ge=1, le=1_000_000)
    batch_timeout_micros: int | None = Field(default=None, ge=0, le=60_000_000)
    max_enqueued_batches: int | None = Field(default=None, ge=1, le=1_000_000)
    num_batch_threads: int | None = Field(default=None, ge=1, le=1024)
    allowed_batch_sizes: list[Annotated[int, Field(ge=1)]] | None = None
    pad_variable_length_inputs: bool | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Batching:
        if not self.enabled and self.parameters():
            raise RuleError(("enabled",), "batching parameters are set but enabled is false")
        sizes = self.allowed_batch_sizes
        if sizes:
            if sizes != sorted(set(sizes)):
                raise RuleError(("allowedBatchSizes",), "must be strictly increasing")
            if self.max_batch_size is not None and sizes[-1] != self.max_batch_size:
                raise RuleError(("allowedBatchSizes",), "its last size must equal maxBatchSize")
        return self

    def parameters(self) -> dict[str, Any]:
        """The parameters that were set, by their TensorFlow Serving (snake_case) names."""
        names = (
            "max_batch_size",
            "batch_timeout_micros",
            "max_enqueued_batches",
            "num_batch_threads",
            "allowed_batch_sizes",
            "pad_variable_length_inputs",
        )
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


class InferenceLogging(StrictModel):
    """Where inference records go: a topic declserve creates, an existing one, or none."""

    topic: Annotated[str, StringConstraints(pattern=KAFKA_TOPIC)] = Field(
        default="create",
        description="'create' (declserve makes and owns the topic), 'none', or an existing topic.",
    )
    mode: LoggingMode = Field(default=LoggingMode.ALL, strict=False)

    @model_validator(mode="after")
    def _mode_needs_topic(self) -> InferenceLogging:
        if self.topic == "none" and "mode" in self.model_fields_set:
            raise RuleError(("mode",), "has no effect when topic is 'none'; remove it")
        return self

    @property
    def enabled(self) -> bool:
        return self.topic != "none"


class Transformer(StrictModel):
    """A pre/post-processing script in front of the predictor (KServe only)."""

    script: Annotated[str, StringConstraints(min_length=1, max_length=1024)] = Field(
        description="Path of a .py file relative to the registry root."
    )
    instances: int = Field(default=1, ge=0, le=MAX_INSTANCES)
    resources: Resources = Field(default_factory=Resources)

    @field_validator("script")
    @classmethod
    def _python_script(cls, value: str) -> str:
        if not value.endswith(".py"):
            raise ValueError("the transformer script must be a .py file")
        return value


class Metadata(StrictModel):
    name: DnsLabel = Field(description="DNS-1123 label, unique in the project.")
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        description="Copied onto the backend objects; Kubernetes label keys and values.",
        # pydantic states the values' rules in the schema but not the keys'
        json_schema_extra={"propertyNames": {"pattern": LABEL_KEY, "maxLength": 253}},
    )


class Endpoint(StrictModel):
    """The serving's one stable address: the port its front proxy listens on."""

    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Kept across every recreate, restart and version bump; omitted: a free "
        "port is chosen once and kept.",
    )


class ServingSpec(StrictModel):
    model: ModelRef
    server: Literal["tensorflow-serving"] = "tensorflow-serving"
    tool: Tool = Field(default=Tool.DEFAULT, strict=False)
    state: DesiredState = Field(default=DesiredState.RUNNING, strict=False)
    instances: int = Field(default=1, ge=0, le=MAX_INSTANCES)
    max_instances: int | None = Field(
        default=None,
        ge=1,
        le=MAX_INSTANCES,
        description="KServe only: the most pods its autoscaler may run (maxReplicas); "
        "default: instances, at least 1.",
    )
    batching: Batching = Field(default_factory=Batching)
    inference_logging: InferenceLogging | None = Field(
        default=None, description="Omitted: no inference logging."
    )
    resources: Resources = Field(default_factory=Resources)
    transformer: Transformer | None = None
    endpoint: Endpoint = Field(default_factory=Endpoint)
    protected: bool = Field(
        default=False,
        description="Never deleted by --prune or destroy, even after its spec is removed, "
        "until a spec or `declserve unprotect` lifts it.",
    )

    @model_validator(mode="after")
    def _kserve_only_features(self) -> ServingSpec:
        if self.tool is not Tool.KSERVE:
            if self.instances == 0:
                raise RuleError(("instances",), "0 (scale to zero) needs tool 'kserve'")
            if self.transformer is not None:
                raise RuleError(("transformer",), "a transformer needs tool 'kserve'")
            if self.max_instances is not None:
                raise RuleError(("maxInstances",), "an autoscaling bound needs tool 'kserve'")
        elif self.batching.enabled:
            beyond = sorted(set(self.batching.parameters())
                            - {"max_batch_size", "batch_timeout_micros"})
            if beyond:
                raise RuleError(("batching", to_camel(beyond[0])),
                                "KServe's batcher takes maxBatchSize and batchTimeoutMicros only")
        if self.max_instances is not None and self.max_instances < self.instances:
            raise RuleError(("maxInstances",), f"must be at least instances ({self.instances})")
        return self

    @property
    def instance_bound(self) -> int:
        """The most pods an autoscaler may run: maxInstances, or instances (at least 1)."""
        return self.max_instances or max(self.instances, 1)


class _Document(StrictModel):
    """What every kind has: the API version and the metadata."""

    api_version: Literal["declserve.io/v1"]
    metadata: Metadata

    @property
    def name(self) -> str:
        return self.metadata.name


class Serving(_Document):
    """One model serving: the unit that plan and apply create, change and delete."""

    kind: Literal["Serving"]
    spec: ServingSpec


class DockerBackend(StrictModel):
    type: Literal["docker"]
    image: str = Field(
        default="tensorflow/serving:2.19.1",
        description="TensorFlow Serving image; servings run its tensorflow_model_server.",
    )
    base_url: str | None = Field(
        default=None, description="Docker engine address; default: DOCKER_HOST or the local socket."
    )
    bind_address: str = Field(
        default="127.0.0.1", description="Host address the REST ports are published on."
    )
    restart_policy: Literal["no", "always", "unless-stopped", "on-failure"] = "unless-stopped"
    pull_policy: Literal["if-not-present", "never"] = Field(
        default="if-not-present", description="Whether apply may pull a missing image."
    )
    state_dir: str | None = Field(
        default=None,
        description="Host directory for model config files; default /var/lib/declserve.",
    )
    poll_seconds: int = Field(
        default=2, ge=1, le=600, description="How often TensorFlow Serving re-reads its config."
    )
    logging_proxy_image: str = Field(
        default="declserve/logproxy:latest",
        description="declserve's inference-logging proxy image (scripts/build-logproxy-image.sh).",
    )
    ready_timeout_seconds: int = Field(default=180, ge=1, le=3600)


class KubernetesModels(StrictModel):
    """Where the cluster's pods find the registry's `Models/` directory: a claim or a host path."""

    claim: DnsLabel | None = Field(
        default=None, description="A PersistentVolumeClaim in the namespace holding the registry."
    )
    sub_path: str = Field(
        default="", description="The registry root inside the claim ('' = the claim's root)."
    )
    host_path: str | None = Field(
        default=None,
        description="The registry root on the node (single-node clusters); default: the "
        "project's registry directory.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> KubernetesModels:
        if self.claim and self.host_path:
            raise RuleError(("hostPath",), "give either claim or hostPath, not both")
        if self.sub_path and not self.claim:
            raise RuleError(("subPath",), "subPath needs claim")
        if self.sub_path.startswith("/") or ".." in self.sub_path.split("/"):
            raise RuleError(("subPath",), "must be a relative path inside the claim")
        if self.host_path is not None and not self.host_path.startswith("/"):
            raise RuleError(("hostPath",), "must be an absolute path on the node")
        return self


class KServeSettings(StrictModel):
    """How `tool: kserve` servings become KServe InferenceServices."""

    deployment_mode: Literal["Standard", "Knative"] = Field(
        default="Standard",
        description="KServe's deployment mode (serving.kserve.io/deploymentMode). Scale to "
        "zero (instances: 0) needs Knative: in Standard mode KServe runs one pod anyway.",
    )
    transformer_image: str = Field(
        default="declserve/kserve-transformer:latest",
        description="Image with KServe's Python model server that runs transformer scripts.",
    )


class KubernetesBackend(StrictModel):
    type: Literal["kubernetes"]
    kubeconfig: str | None = Field(
        default=None,
        description="Path of a kubeconfig file; default: in-cluster, then KUBECONFIG, then "
        "~/.kube/config.",
    )
    context: str | None = Field(default=None, description="kubeconfig context; default: current.")
    namespace: DnsLabel = "default"
    image: str = Field(
        default="tensorflow/serving:2.19.1",
        description="TensorFlow Serving image; servings run its tensorflow_model_server.",
    )
    pull_policy: Literal["IfNotPresent", "Always", "Never"] = Field(
        default="IfNotPresent", description="imagePullPolicy of every container declserve makes."
    )
    models: KubernetesModels = Field(default_factory=KubernetesModels)
    service_type: Literal["ClusterIP", "NodePort"] = Field(
        default="ClusterIP", description="Type of each serving's Service (its stable address)."
    )
    logging_proxy_image: str = Field(
        default="declserve/logproxy:latest",
        description="declserve's inference-logging proxy image, run as a sidecar when logging.",
    )
    kafka_bootstrap_servers: (
        list[Annotated[str, StringConstraints(min_length=3)]] | None
    ) = Field(
        default=None,
        min_length=1,
        description="The Kafka brokers as pods reach them (the logging proxies produce there); "
        "default: kafka.bootstrapServers.",
    )
    pre_stop_seconds: int = Field(
        default=5,
        ge=0,
        le=300,
        description="How long a pod keeps answering after it is told to stop, so that every "
        "node drops it from the Service first (0 drops requests during rollouts).",
    )
    ready_timeout_seconds: int = Field(default=600, ge=1, le=3600)
    kserve: KServeSettings = Field(default_factory=KServeSettings)


class Kafka(StrictModel):
    bootstrap_servers: list[Annotated[str, StringConstraints(min_length=3)]] = Field(min_length=1)
    topic_pattern: str = Field(
        default="{project}-{serving}-inference",
        description="Name of a topic declserve creates; {project} and {serving} are replaced.",
    )
    partitions: int = Field(default=1, ge=1, le=10_000)
    replication_factor: int = Field(default=1, ge=1, le=32)
    retention_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=-1, le=2**62)
    max_message_bytes: int = Field(
        default=2 * 2**20,
        ge=2 * 2**20,
        le=2**30,
        description="max.message.bytes of the topics declserve creates. A logged request may "
        "be this size less 1 MiB (the rest holds the predictions); larger ones get HTTP 413.",
    )

    @field_validator("topic_pattern")
    @classmethod
    def _pattern_names_serving(cls, value: str) -> str:
        if "{serving}" not in value:
            raise ValueError("topicPattern must contain {serving} so that topics differ")
        sample = value.replace("{project}", "p").replace("{serving}", "s")
        if not re.match(KAFKA_TOPIC, sample):
            raise ValueError("topicPattern makes names Kafka refuses (allowed: A-Z a-z 0-9 . _ -)")
        return value


class ProjectSpec(StrictModel):
    registry: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="Registry root holding Models/; relative paths are relative to declserve.yaml."
    )
    backend: Annotated[DockerBackend | KubernetesBackend, Field(discriminator="type")]
    kafka: Kafka | None = None


class Project(_Document):
    """The project file `declserve.yaml`: registry, backend and Kafka settings."""

    kind: Literal["Project"]
    spec: ProjectSpec


KINDS: dict[str, type[StrictModel]] = {"Serving": Serving, "Project": Project}
