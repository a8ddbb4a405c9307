"""Decoding images from files or bytes to RGB uint8 arrays, with typed errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from hub.face.errors import ImageError


def decode_image(data: bytes, name: str = "<bytes>") -> np.ndarray:
    if not data:
        raise ImageError(f"{name}: empty image")
    try:
        bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ImageError(f"{name}: cannot decode image: {exc}") from exc
    if bgr is None or bgr.size == 0:
        raise ImageError(f"{name}: not a decodable image (corrupt or unsupported format)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_image(path: Path | str) -> np.ndarray:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror}") from exc
    return decode_image(data, str(path))


def encode_jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageError("cannot encode JPEG snapshot")
    return buf.tobytes()
