"""A transformer for the KServe example: scales the inputs before the predictor and says so in
the answer. It runs in KServe's Python model server (the `kserve` package); KServe starts it
with --model_name, --predictor_host and --http_port."""

import argparse

import kserve
from kserve import model_server

FACTOR = 2.0


class Scale(kserve.Model):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.ready = True

    def preprocess(self, payload: dict, headers: dict | None = None) -> dict:
        return {"instances": [[FACTOR * x for x in row] for row in payload["instances"]]}

    def postprocess(self, response: dict, headers: dict | None = None) -> dict:
        response["transformedBy"] = f"scale x{FACTOR:g}"
        return response


if __name__ == "__main__":
    args, _ = argparse.ArgumentParser(parents=[model_server.parser]).parse_known_args()
    kserve.ModelServer().start([Scale(args.model_name)])
