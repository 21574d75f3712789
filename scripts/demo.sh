#!/usr/bin/env bash
# The main job: install what is missing, then plan and apply examples/servings on the local
# Docker engine and show the result. When the real tensorflow/serving image is not on the
# engine (it cannot be pulled here), the servings run the locally built TensorFlow Serving
# DOUBLE instead, which declserve is told through DECLSERVE_IMAGE.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo
project=examples/servings
image=$(.venv/bin/python -c 'import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))["spec"]["backend"].get("image","tensorflow/serving"))' "$project/declserve.yaml")
if ! docker image inspect "$image" >/dev/null 2>&1; then
    double=$(bash testinfra/tfserving-double/build.sh | tail -n 1)
    echo "note: $image is not on this engine; using the TensorFlow Serving double $double" >&2
    export DECLSERVE_IMAGE="$double"
fi
ds() { .venv/bin/declserve "$@"; }
ds validate -C "$project"
ds plan -C "$project"
ds apply -C "$project" --auto-approve
ds status -C "$project"
