"""TensorFlow Serving's own files and API, as declserve writes and reads them (pure).

The model config file (text protobuf `ModelServerConfig`) pins the served version with
`model_version_policy { specific { versions: N } }`; TensorFlow Serving re-reads it every
`--model_config_file_poll_wait_seconds` and loads the new version before it unloads the old one,
which is what makes a version bump keep serving. The batching parameters file carries the
spec's batching settings. Parsing covers exactly what declserve writes, so a hand edit to the
version is read back as drift.
"""

from __future__ import annotations

import json
import re
from typing import Any

REST_PORT = 8501
GRPC_PORT = 8500
CONFIG_DIR = "/etc/declserve"
MODEL_CONFIG = "models.config"
BATCHING_CONFIG = "batching.config"
MODELS_MOUNT = "/models"


def model_config_text(model: str, version: int) -> str:
    return (
        "# Written by declserve; edits are drift and the next apply reverts them.\n"
        "model_config_list {\n"
        "  config {\n"
        f'    name: "{model}"\n'
        f'    base_path: "{MODELS_MOUNT}/{model}"\n'
        '    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ specific {{ versions: {version} }} }}\n"
        "  }\n"
        "}\n"
    )


_NAME = re.compile(r'\bname:\s*"([^"]*)"')
_SPECIFIC = re.compile(r"specific\s*\{([^}]*)\}")
_VERSIONS = re.compile(r"versions:\s*(\d+)")


def parse_model_config(text: str) -> dict[str, Any]:
    """The model name and pinned version(s) a config file asks for; None where unreadable."""
    body = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    name = _NAME.search(body)
    specific = _SPECIFIC.search(body)
    versions = [int(v) for v in _VERSIONS.findall(specific.group(1))] if specific else []
    if "latest" in body and not specific:
        version: Any = "latest-policy"
    elif len(versions) == 1:
        version = versions[0]
    elif versions:
        version = versions
    else:
        version = None
    return {"name": name.group(1) if name else None, "version": version}


_FIELD = re.compile(r'\b(base_path|model_platform):\s*"([^"]*)"')


def model_config_fields(text: str) -> dict[str, Any]:
    """The fields of a model config file besides name and version, as TF Serving reads them.

    `entries` counts the `config` blocks: a second model added by hand is an edit too.
    """
    body = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    fields: dict[str, Any] = {key: value for key, value in _FIELD.findall(body)}
    fields["entries"] = len(re.findall(r"\bconfig\s*\{", body))
    return fields


_BATCH_SCALARS = (
    "max_batch_size",
    "batch_timeout_micros",
    "max_enqueued_batches",
    "num_batch_threads",
)


def batching_config_text(parameters: dict[str, Any]) -> str:
    lines = ["# Written by declserve from the serving's spec.batching."]
    for key in _BATCH_SCALARS:
        if key in parameters:
            lines.append(f"{key} {{ value: {int(parameters[key])} }}")
    for size in parameters.get("allowed_batch_sizes") or ():
        lines.append(f"allowed_batch_sizes: {int(size)}")
    if "pad_variable_length_inputs" in parameters:
        lines.append(
            f"pad_variable_length_inputs: {str(parameters['pad_variable_length_inputs']).lower()}"
        )
    return "\n".join(lines) + "\n"


def parse_batching_config(text: str) -> dict[str, Any]:
    body = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    out: dict[str, Any] = {}
    for key in _BATCH_SCALARS:
        match = re.search(rf"\b{key}\s*\{{\s*value:\s*(\d+)\s*\}}", body)
        if match:
            out[key] = int(match.group(1))
    sizes = [int(v) for v in re.findall(r"\ballowed_batch_sizes:\s*(\d+)", body)]
    if sizes:
        out["allowed_batch_sizes"] = sizes
    pad = re.search(r"\bpad_variable_length_inputs:\s*(true|false)", body)
    if pad:
        out["pad_variable_length_inputs"] = pad.group(1) == "true"
    known = re.compile(rf"^\s*(({'|'.join(_BATCH_SCALARS)})\s*\{{\s*value:\s*\d+\s*\}}|"
                       r"allowed_batch_sizes:\s*\d+|pad_variable_length_inputs:\s*(true|false))\s*$")
    unknown = [line.strip() for line in body.splitlines() if line.strip() and not known.match(line)]
    if unknown:
        out["unrecognised"] = unknown  # a hand edit declserve would not have written
    return out


def server_args(poll_seconds: int, batching: bool) -> list[str]:
    """Flags of `tensorflow_model_server`; the batching pair only when batching is on."""
    args = [
        f"--port={GRPC_PORT}",
        f"--rest_api_port={REST_PORT}",
        f"--model_config_file={CONFIG_DIR}/{MODEL_CONFIG}",
        f"--model_config_file_poll_wait_seconds={poll_seconds}",
    ]
    if batching:
        args += [
            "--enable_batching=true",
            f"--batching_parameters_file={CONFIG_DIR}/{BATCHING_CONFIG}",
        ]
    return args


BATCHING_FLAGS = ("--enable_batching", "--batching_parameters_file")


def split_batching_args(args: list[str]) -> tuple[list[str], bool]:
    """The args without the batching pair, and whether batching is on."""
    rest = [a for a in args if not a.startswith(BATCHING_FLAGS)]
    enabled = any(a in ("--enable_batching", "--enable_batching=true") for a in args)
    return rest, enabled


def available_versions(status_body: bytes) -> tuple[int, ...]:
    """Versions in state AVAILABLE from `GET /v1/models/<name>`."""
    doc = json.loads(status_body)
    return tuple(
        sorted(
            int(v["version"])
            for v in doc.get("model_version_status", [])
            if v.get("state") == "AVAILABLE"
        )
    )
