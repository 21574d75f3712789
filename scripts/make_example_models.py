#!/usr/bin/env python3
"""Build the tiny, real TensorFlow SavedModels of the example model registry.

Writes ``examples/servings/registry/Models/<model>/<version>/`` in the layout
TensorFlow Serving expects (``saved_model.pb``, ``variables/``, and the
``fingerprint.pb`` that newer TensorFlow versions write):

* ``mnist`` versions 1, 2, 3: float32 ``[None, 784]`` -> softmax over 10 classes
  (one dense layer, 784x10 weights + 10 biases).
* ``iris`` versions 1, 2: float32 ``[None, 4]`` -> softmax over 3 classes
  (one dense layer, 4x3 weights + 3 biases).

Every model is a ``tf.Module`` saved with ``tf.saved_model.save`` and one
``serving_default`` signature: input key ``inputs``, output key
``probabilities``. The weights come from NumPy generators seeded per
(model, version), so each version predicts differently, and a rerun with the
same TensorFlow version writes the same weights.

The outputs are committed, so tests and the demo need no TensorFlow. To rerun
(from the repository root)::

    python3 scripts/make_example_models.py            # regenerate the registry
    python3 scripts/make_example_models.py --verify   # load each version, call it

If ``import tensorflow`` fails, the script makes a throwaway virtualenv in
``~/.cache/declserve-test/tf-venv`` (override with ``DECLSERVE_TF_VENV``),
installs ``tensorflow-cpu`` (pinned below) into it with pip, and re-executes
itself there. ``--output DIR`` writes the ``Models/`` tree somewhere else (for
example to check that a rerun is byte-for-byte identical).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TF_REQUIREMENT = "tensorflow-cpu==2.20.0"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "examples" / "servings" / "registry" / "Models"
VENV_DIR = Path(
    os.environ.get("DECLSERVE_TF_VENV", Path.home() / ".cache" / "declserve-test" / "tf-venv")
)
_REEXEC_MARK = "DECLSERVE_TF_VENV_REEXEC"

SIGNATURE_KEY = "serving_default"
INPUT_KEY = "inputs"
OUTPUT_KEY = "probabilities"

# model name -> (number of input features, number of classes, versions)
MODELS: dict[str, tuple[int, int, tuple[int, ...]]] = {
    "mnist": (784, 10, (1, 2, 3)),
    "iris": (4, 3, (1, 2)),
}


# --------------------------------------------------------------------------- bootstrap
def _in_venv(py: Path) -> bool:
    """True if ``py`` runs as the interpreter of VENV_DIR (not the base Python)."""
    if not (py.exists() and (VENV_DIR / "pyvenv.cfg").exists()):
        return False
    probe = subprocess.run(
        [str(py), "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True
    )
    return probe.returncode == 0 and Path(probe.stdout.strip()).resolve() == VENV_DIR.resolve()


def ensure_tensorflow() -> None:
    """Import TensorFlow, or re-exec this script in a venv that has it."""
    try:
        import tensorflow  # noqa: F401

        return
    except ImportError:
        pass
    if os.environ.get(_REEXEC_MARK):
        sys.exit(f"tensorflow still not importable inside {VENV_DIR}; remove it and rerun")
    py = VENV_DIR / "bin" / "python"
    if not _in_venv(py):
        print(f"[make_example_models] creating venv {VENV_DIR}", file=sys.stderr)
        shutil.rmtree(VENV_DIR, ignore_errors=True)  # a broken or half-deleted one
        VENV_DIR.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV_DIR)], check=True)
        if not _in_venv(py):
            sys.exit(f"{VENV_DIR} is not a working virtualenv")
    probe = subprocess.run([str(py), "-c", "import tensorflow"], capture_output=True)
    if probe.returncode != 0:
        print(f"[make_example_models] pip install {TF_REQUIREMENT}", file=sys.stderr)
        # --require-virtualenv: never install into the base Python, even if the venv
        # vanishes underneath us.
        subprocess.run(
            [
                str(py),
                "-m",
                "pip",
                "install",
                "--require-virtualenv",
                "--quiet",
                "--disable-pip-version-check",
                TF_REQUIREMENT,
            ],
            check=True,
        )
    env = dict(os.environ, **{_REEXEC_MARK: "1"})
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.execve(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]], env)


# --------------------------------------------------------------------------- models
def make_weights(name: str, version: int):
    """Deterministic float32 weights for one (model, version)."""
    import numpy as np

    n_in, n_out, _ = MODELS[name]
    seed = [sum(name.encode()), version]  # stable, distinct per (model, version)
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0.0, 1.0 / np.sqrt(n_in), size=(n_in, n_out)).astype(np.float32)
    bias = rng.normal(0.0, 0.1, size=(n_out,)).astype(np.float32)
    return kernel, bias


def build_module(name: str, version: int):
    import tensorflow as tf

    n_in, _, _ = MODELS[name]
    kernel, bias = make_weights(name, version)

    class DenseSoftmax(tf.Module):
        def __init__(self):
            super().__init__(name=f"{name}_v{version}")
            self.kernel = tf.Variable(kernel, name="kernel")
            self.bias = tf.Variable(bias, name="bias")

        @tf.function(input_signature=[tf.TensorSpec([None, n_in], tf.float32, name=INPUT_KEY)])
        def serve(self, inputs):
            logits = tf.matmul(inputs, self.kernel) + self.bias
            return {OUTPUT_KEY: tf.nn.softmax(logits, axis=-1)}

    return DenseSoftmax()


def generate(output: Path) -> None:
    import tensorflow as tf

    tf.random.set_seed(0)
    output.mkdir(parents=True, exist_ok=True)
    for name, (_, _, versions) in MODELS.items():
        for version in versions:
            module = build_module(name, version)
            final = output / name / str(version)
            final.parent.mkdir(parents=True, exist_ok=True)
            # Save into a scratch dir beside the target, then swap it in, so a failed
            # run never leaves a half-written version behind.
            scratch = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=final.parent))
            try:
                tmp = scratch / "model"
                tf.saved_model.save(module, str(tmp), signatures={SIGNATURE_KEY: module.serve})
                assets = tmp / "assets"
                if assets.is_dir() and not any(assets.iterdir()):
                    assets.rmdir()  # empty; git would not keep it anyway
                if final.exists():
                    shutil.rmtree(final)
                tmp.rename(final)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            size = sum(p.stat().st_size for p in final.rglob("*") if p.is_file())
            print(f"wrote {final.relative_to(output.parent)} ({size} bytes)")


# --------------------------------------------------------------------------- verify
def sample_input(name: str):
    import numpy as np

    if name == "iris":  # two rows of the classic data set (setosa, virginica)
        return np.array([[5.1, 3.5, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5]], dtype=np.float32)
    n_in = MODELS[name][0]
    return np.random.default_rng(7).random((2, n_in), dtype=np.float32)


def _describe(specs) -> str:
    return ", ".join(f"{k}: {v.dtype.name}{v.shape.as_list()}" for k, v in specs.items())


def verify(output: Path) -> None:
    import numpy as np
    import tensorflow as tf

    print(f"TensorFlow {tf.__version__}")
    failures = []
    for name, (n_in, n_out, versions) in MODELS.items():
        x = sample_input(name)
        seen = {}
        for version in versions:
            path = output / name / str(version)
            loaded = tf.saved_model.load(str(path))
            fn = loaded.signatures[SIGNATURE_KEY]
            in_spec = fn.structured_input_signature[1]
            out_spec = fn.structured_outputs
            result = fn(**{INPUT_KEY: tf.constant(x)})
            probs = result[OUTPUT_KEY].numpy()
            print(
                f"{name}/{version}: {SIGNATURE_KEY} "
                f"inputs={{{_describe(in_spec)}}} outputs={{{_describe(out_spec)}}}"
            )
            for row in probs:
                row_text = np.array2string(row, precision=4, max_line_width=200)
                print(f"    argmax={int(row.argmax())} probs={row_text}")
            want_in = f"{INPUT_KEY}: float32[None, {n_in}]"
            want_out = f"{OUTPUT_KEY}: float32[None, {n_out}]"
            if (_describe(in_spec), _describe(out_spec)) != (want_in, want_out):
                failures.append(f"{name}/{version}: signature is not {want_in} -> {want_out}")
            if probs.shape != (x.shape[0], n_out):
                failures.append(f"{name}/{version}: output shape {probs.shape}")
            if not np.allclose(probs.sum(axis=1), 1.0, atol=1e-5):
                failures.append(f"{name}/{version}: rows do not sum to 1")
            # The same computation in NumPy from the seeded weights must agree.
            kernel, bias = make_weights(name, version)
            logits = x @ kernel + bias
            expect = np.exp(logits - logits.max(axis=1, keepdims=True))
            expect /= expect.sum(axis=1, keepdims=True)
            if not np.allclose(probs, expect, atol=1e-5):
                failures.append(f"{name}/{version}: differs from NumPy reference")
            for other, other_probs in seen.items():
                if np.allclose(probs, other_probs, atol=1e-6):
                    failures.append(f"{name}/{version}: same predictions as version {other}")
            seen[version] = probs
    if failures:
        print("VERIFY FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("verify: all versions load, predict, match the NumPy reference, and differ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"the Models/ directory to write or check (default: {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="load every version already on disk and call serving_default (no regeneration)",
    )
    args = parser.parse_args()
    ensure_tensorflow()
    output = args.output.resolve()
    if args.verify:
        verify(output)
    else:
        generate(output)


if __name__ == "__main__":
    main()
