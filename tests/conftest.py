"""Shared pytest set-up: the real-server fixtures live in tests/fixtures/, one module per server."""

pytest_plugins = [
    "tests.fixtures.docker_engine",
    "tests.fixtures.kafka",
    "tests.fixtures.kube",
    "tests.fixtures.cluster",  # after kafka and kube, which it imports
    "tests.fixtures.logproxy",
]
