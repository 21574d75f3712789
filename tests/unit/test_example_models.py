"""The committed example registry holds real (tiny) TensorFlow SavedModels.

No TensorFlow or protobuf package is needed: a few lines of protobuf wire-format
decoding walk ``saved_model.pb`` far enough to read the ``serving_default``
signature. The models are made by ``scripts/make_example_models.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REGISTRY = Path(__file__).resolve().parents[2] / "examples" / "servings" / "registry" / "Models"

# model -> (versions, input width, number of classes); see scripts/make_example_models.py
EXPECTED = {
    "mnist": ((1, 2, 3), 784, 10),
    "iris": ((1, 2), 4, 3),
}
SIGNATURE = "serving_default"
INPUT_KEY = "inputs"
OUTPUT_KEY = "probabilities"
DT_FLOAT = 1  # tensorflow.DataType

VERSIONS = [(m, v) for m, (versions, _, _) in EXPECTED.items() for v in versions]


# ----------------------------------------------------------------- protobuf wire format
def _varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """Decode one whole message into (field number, value); raise unless it parses exactly."""
    out, i = [], 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ValueError(f"field number 0 at offset {i}")
        if wire_type == 0:
            value, i = _varint(buf, i)
        elif wire_type == 2:
            size, i = _varint(buf, i)
            value, i = buf[i : i + size], i + size
        elif wire_type in (1, 5):
            width = 8 if wire_type == 1 else 4
            value, i = buf[i : i + width], i + width
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
        if i > len(buf):
            raise ValueError("truncated field")
        out.append((number, value))
    return out


def first(msg: list, number: int, default=None):
    return next((v for n, v in msg if n == number), default)


def every(msg: list, number: int) -> list:
    return [v for n, v in msg if n == number]


def string_map(msg: list, number: int) -> dict[str, bytes]:
    """A ``map<string, Message>`` field: entries with key = field 1, value = field 2."""
    entries = (fields(e) for e in every(msg, number))
    return {first(e, 1, b"").decode(): first(e, 2, b"") for e in entries}


def tensor_info(raw: bytes) -> tuple[int, list[int]]:
    """TensorInfo -> (dtype, dims); -1 for an unknown dimension."""
    info = fields(raw)
    shape = fields(first(info, 3, b""))
    dims = []
    for dim in every(shape, 2):
        size = first(fields(dim), 1, 0)
        dims.append(size - (1 << 64) if size >= 1 << 63 else size)
    return first(info, 2), dims


# ----------------------------------------------------------------- tests
def test_registry_has_exactly_the_expected_models_and_versions():
    found = {
        (model.name, int(version.name))
        for model in REGISTRY.iterdir()
        if model.is_dir()
        for version in model.iterdir()
        if version.is_dir()
    }
    assert found == set(VERSIONS)


def test_registry_is_small():
    total = sum(p.stat().st_size for p in REGISTRY.rglob("*") if p.is_file())
    assert 0 < total < 1_000_000


@pytest.mark.parametrize("model,version", VERSIONS, ids=[f"{m}-{v}" for m, v in VERSIONS])
def test_version_is_a_servable_saved_model(model, version):
    _, n_in, n_out = EXPECTED[model]
    root = REGISTRY / model / str(version)

    raw = (root / "saved_model.pb").read_bytes()
    assert raw, "empty saved_model.pb"
    assert raw[0] == 0x08, "does not start with saved_model_schema_version (field 1, varint)"
    assert SIGNATURE.encode() in raw

    saved_model = fields(raw)  # the whole file decodes as protobuf fields
    assert first(saved_model, 1) == 1, "saved_model_schema_version"
    meta_graphs = [fields(m) for m in every(saved_model, 2)]
    assert len(meta_graphs) == 1
    meta_graph = meta_graphs[0]
    tags = [t.decode() for t in every(fields(first(meta_graph, 1, b"")), 4)]
    assert tags == ["serve"]

    signatures = string_map(meta_graph, 5)
    assert SIGNATURE in signatures
    signature = fields(signatures[SIGNATURE])
    assert first(signature, 3) == b"tensorflow/serving/predict"
    inputs = {k: tensor_info(v) for k, v in string_map(signature, 1).items()}
    outputs = {k: tensor_info(v) for k, v in string_map(signature, 2).items()}
    assert inputs == {INPUT_KEY: (DT_FLOAT, [-1, n_in])}
    assert outputs == {OUTPUT_KEY: (DT_FLOAT, [-1, n_out])}

    variables = root / "variables"
    assert (variables / "variables.index").stat().st_size > 0
    data = variables / "variables.data-00000-of-00001"
    assert data.stat().st_size >= 4 * (n_in * n_out + n_out), "float32 weights missing"


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_versions_of_a_model_have_different_weights(model):
    versions = EXPECTED[model][0]
    weights = {
        (REGISTRY / model / str(v) / "variables" / "variables.data-00000-of-00001").read_bytes()
        for v in versions
    }
    assert len(weights) == len(versions)
