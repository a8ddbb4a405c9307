"""TFLite runtime selection and a checked model wrapper.

LiteRT (``ai-edge-litert``) is preferred; ``tflite-runtime`` is the fallback.
The choice is made once at start by actually constructing an interpreter on a
probe model (tflite-runtime 2.14 imports under NumPy 2 but fails when the
interpreter is built, so an import check is not enough) and is reported with
the reason each rejected runtime failed.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hub.face.errors import ModelError, RuntimeUnavailableError

log = logging.getLogger(__name__)

# (name, module with Interpreter, distribution name for the version)
RUNTIMES: tuple[tuple[str, str, str], ...] = (
    ("litert", "ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite-runtime", "tflite_runtime.interpreter", "tflite-runtime"),
)


@dataclass(frozen=True)
class Runtime:
    name: str
    version: str
    interpreter_cls: Callable[..., Any]
    rejected: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        text = f"{self.name} {self.version}"
        if self.rejected:
            text += " (rejected: " + "; ".join(f"{k}: {v}" for k, v in self.rejected.items()) + ")"
        return text


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def select_runtime(probe_model: Path, prefer: Sequence[str] | None = None) -> Runtime:
    """Return the first runtime (in ``prefer`` order) that can run ``probe_model``."""
    order = list(prefer) if prefer else [r[0] for r in RUNTIMES]
    known = {r[0]: r for r in RUNTIMES}
    rejected: dict[str, str] = {}
    for name in order:
        if name not in known:
            raise RuntimeUnavailableError(f"unknown runtime {name!r}; known: {sorted(known)}", {})
        _, module, dist = known[name]
        try:
            cls = importlib.import_module(module).Interpreter
            cls(model_path=str(probe_model), num_threads=1).allocate_tensors()
        # A runtime built against another NumPy ABI fails with SystemError or
        # AttributeError from inside the extension, so all of these mean "unusable".
        except (ImportError, SystemError, AttributeError, RuntimeError, ValueError) as exc:
            rejected[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
            continue
        runtime = Runtime(name, _version(dist), cls, dict(rejected))
        log.info("face runtime: %s", runtime.describe())
        return runtime
    raise RuntimeUnavailableError(
        "no TFLite runtime usable: " + "; ".join(f"{k}: {v}" for k, v in rejected.items()), rejected
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class TFLiteModel:
    """One interpreter over one model file, with its input shape checked.

    ``expect_input`` is a shape where ``None`` matches any size (e.g. the batch).
    An interpreter is not thread-safe; ``run`` serialises calls with a lock.
    """

    def __init__(self, runtime: Runtime, path: Path | str, expect_input: Sequence[int | None],
                 num_threads: int = 2, role: str = "model"):
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"{role} model not found: {path}")
        try:
            self.interpreter = runtime.interpreter_cls(model_path=str(path), num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{role} model {path} cannot be loaded: {exc}") from exc
        self.path = path
        self.role = role
        self.input = self.interpreter.get_input_details()[0]
        self.outputs = self.interpreter.get_output_details()
        shape = [int(v) for v in self.input["shape"]]
        if len(shape) != len(expect_input) or any(
            e is not None and e != s for e, s in zip(expect_input, shape)
        ):
            raise ModelError(
                f"{role} model {path} has input shape {shape}, expected {list(expect_input)} (None = any)"
            )
        if self.input["dtype"] != np.float32:
            raise ModelError(f"{role} model {path} has input dtype {self.input['dtype']}, expected float32")
        self.input_shape = tuple(shape)
        self.sha256 = file_sha256(path)
        self.version = f"{path.name}@{self.sha256[:12]}"
        self._lock = threading.Lock()

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        with self._lock:
            self.interpreter.set_tensor(self.input["index"], tensor)
            self.interpreter.invoke()
            return [self.interpreter.get_tensor(o["index"]).copy() for o in self.outputs]
