"""MobileFaceNet embeddings: aligned 112x112 RGB crops -> L2-normalised 192-d vectors.

The original model has a fixed batch of 2 and cannot be resized; faces are fed
two at a time and a single face is paired with itself (the slots are computed
independently). The batch-1 variant is fed one face per invoke.
"""

from __future__ import annotations

import numpy as np

from hub.face.errors import ModelError
from hub.face.runtime import Runtime, TFLiteModel

EMBEDDING_DIM = 192


def normalise_input(crops: np.ndarray) -> np.ndarray:
    return (crops.astype(np.float32) - 127.5) / 128.0


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class Embedder:
    def __init__(self, runtime: Runtime, model_path, num_threads: int = 2):
        self.model = TFLiteModel(runtime, model_path, (None, 112, 112, 3), num_threads, role="embedding")
        self.batch = self.model.input_shape[0]
        out_shape = tuple(self.model.outputs[0]["shape"])
        if len(self.model.outputs) != 1 or out_shape[-1] != EMBEDDING_DIM:
            raise ModelError(f"embedding model {self.model.path}: output {out_shape}, expected [N, {EMBEDDING_DIM}]")
        if self.batch not in (1, 2):
            raise ModelError(f"embedding model {self.model.path}: batch {self.batch} unsupported (1 or 2)")

    @property
    def version(self) -> str:
        return self.model.version

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """crops: (N, 112, 112, 3) uint8 RGB -> (N, 192) float32, unit norm."""
        if crops.ndim != 4 or crops.shape[1:] != (112, 112, 3):
            raise ValueError(f"expected (N, 112, 112, 3) crops, got {crops.shape}")
        tensor = normalise_input(crops)
        out = []
        for start in range(0, len(tensor), self.batch):
            chunk = tensor[start:start + self.batch]
            if len(chunk) < self.batch:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch - len(chunk), axis=0)])
            out.append(self.model.run(chunk)[0][: min(self.batch, len(tensor) - start)])
        return l2_normalise(np.concatenate(out, axis=0))
