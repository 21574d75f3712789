#!/bin/bash
# The entrypoint of the TensorFlow Serving TEST DOUBLE image, shaped like the real
# tensorflow/serving image's /usr/bin/tf_serving_entrypoint.sh (same flags, same MODEL_NAME and
# MODEL_BASE_PATH variables), except for `exec`: the server is PID 1 and gets SIGTERM directly.
exec tensorflow_model_server --port=8500 --rest_api_port=8501 \
    --model_name="${MODEL_NAME}" --model_base_path="${MODEL_BASE_PATH}/${MODEL_NAME}" "$@"
