"""The front proxy's pure parts, in-process: proxy.json, upstreams.json, readiness, records.

(Everything that talks to a server is tested against real containers and the real broker in
test_proxy.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from declserve.backends import tfserving
from declserve.logproxy import proxy as P

BASE = {
    "serving": "s",
    "model": "mnist",
    "listen": "127.0.0.1:8080",
    "mode": "all",
    "topic": "t",
    "upstreamsFile": "/etc/declserve/upstreams.json",
}


def test_defaults_and_the_record_budget():
    cfg = P.parse_config(dict(BASE), "proxy.json")
    assert (cfg.host, cfg.port, cfg.bootstrap, cfg.model_config_file) == (
        "127.0.0.1",
        8080,
        None,
        None,
    )
    assert cfg.max_request_bytes == 1048576 and cfg.max_record_bytes == 2097152
    assert (cfg.health_interval, cfg.health_timeout, cfg.upstream_timeout) == (0.5, 1.0, 120.0)
    assert (cfg.drain_seconds, cfg.flush_seconds) == (5.0, 3.0)
    # An accepted request's inputs plus every other field fit, framing included.
    assert cfg.max_request_bytes + P.RECORD_OVERHEAD + P.RECORD_FRAMING <= cfg.max_record_bytes
    custom = P.parse_config(
        {
            **BASE,
            "maxRequestBytes": 100,
            "maxRecordBytes": 70000,
            "healthIntervalSeconds": 2,
            "listen": "[::1]:9",
        },
        "p",
    )
    assert (
        custom.max_request_bytes,
        custom.max_record_bytes,
        custom.health_interval,
        custom.host,
    ) == (100, 70000, 2, "::1")


def test_mode_none_needs_no_topic_and_logging_modes_do():
    cfg = P.parse_config({k: v for k, v in BASE.items() if k != "topic"} | {"mode": "none"}, "p")
    assert cfg.mode == "none" and cfg.topic is None and not cfg.logging
    with pytest.raises(P.ConfigError, match="'topic' must be a non-empty string"):
        P.parse_config({k: v for k, v in BASE.items() if k != "topic"}, "p")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"mode": "everything"}, "'mode' must be one of none, all, model-inputs, predictions"),
        ({"listen": "8080"}, "'listen' must be HOST:PORT"),
        ({"serving": ""}, "'serving' must be a non-empty string"),
        ({"maxRequestBytes": "1MiB"}, "'maxRequestBytes' must be a positive integer"),
        ({"maxRequestBytes": True}, "'maxRequestBytes' must be a positive integer"),
        ({"healthIntervalSeconds": 0}, "'healthIntervalSeconds' must be a positive number"),
        ({"maxRecordBytes": 1048576}, "'maxRecordBytes' (1048576) must be at least"),
    ],
)
def test_bad_config_is_one_clear_sentence(change, message):
    with pytest.raises(P.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        P.parse_config({**BASE, **change}, "proxy.json")


def test_load_config_reads_the_file(tmp_path: Path):
    (tmp_path / "proxy.json").write_text(json.dumps(BASE))
    assert P.load_config(str(tmp_path / "proxy.json")).topic == "t"
    with pytest.raises(P.ConfigError, match="cannot read the proxy config"):
        P.load_config(str(tmp_path / "absent.json"))


def test_upstreams_file_format():
    assert P.parse_upstreams(
        '{"upstreams": ["http://127.0.0.1:1/", "http://h:2", "http://h:2"]}'
    ) == ["http://127.0.0.1:1", "http://h:2"]
    for bad in (
        '{"upstreams": "http://h:1"}',
        '["http://h:1"]',
        '{"upstreams": ["h:1"]}',
        '{"upstreams": [1]}',
        "{",
    ):
        with pytest.raises(ValueError):
            P.parse_upstreams(bad)


def status(*pairs: tuple[int, str]) -> bytes:
    return json.dumps(
        {
            "model_version_status": [
                {"version": str(v), "state": s, "status": {"error_code": "OK"}} for v, s in pairs
            ]
        }
    ).encode()


def test_readiness_from_the_model_status():
    assert P.judge(200, status((2, "AVAILABLE"), (1, "END")), 2) == ("ready", "version 2 AVAILABLE")
    assert P.judge(200, status((2, "AVAILABLE")), None)[0] == "ready"
    state, reason = P.judge(200, status((2, "LOADING"), (1, "AVAILABLE")), 2)
    assert state == "stale" and "pinned version 2 not AVAILABLE" in reason
    assert P.judge(200, status((1, "END")), 1) == ("down", "no version AVAILABLE")
    assert P.judge(404, b'{"error": "x"}', 1)[0] == "down"
    assert P.judge(200, b"not json", 1)[0] == "down"


def test_the_pinned_version_is_read_with_tfserving(tmp_path: Path):
    path = tmp_path / "models.config"
    pinned = P.PinnedVersion(str(path), "mnist")
    assert pinned.refresh() is None  # no file
    path.write_text(tfserving.model_config_text("mnist", 3))
    assert pinned.refresh() == 3
    path.write_text(tfserving.model_config_text("other", 4))
    assert pinned.refresh() is None  # another model's file pins nothing for this one


def test_record_value_is_the_fields_then_the_members_as_given():
    value = P.record_value(
        {"serving": "s", "statusCode": 200}, {"inputs": "[1.5,2]", "predictions": "null"}
    )
    assert json.loads(value) == {
        "serving": "s",
        "statusCode": 200,
        "inputs": [1.5, 2],
        "predictions": None,
    }
    assert P.record_value({"a": "é"}, {}) == '{"a":"é"}'.encode()
