# KServe's agent (logger and batcher sidecar), built from the same Go module as the manager
# (testinfra/kserve/setup.sh) and put on the local base image by build-agent-image.sh: the
# cluster pulls nothing. KServe's pod webhook adds it to a predictor that logs or batches.
FROM declserve/base:bookworm
COPY agent /usr/local/bin/agent
LABEL io.declserve.component="kserve-agent"
ENTRYPOINT ["/usr/local/bin/agent"]
