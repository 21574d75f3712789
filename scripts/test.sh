#!/usr/bin/env bash
# Install everything the tests need (see scripts/setup.sh), then run the whole test suite
# against the real servers: Docker, Kafka and the Kubernetes API server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
exec .venv/bin/python -m pytest "$@"
