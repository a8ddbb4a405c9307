"""Exception classes of hub.face (the tree is drawn in the package docstring)."""


class FaceError(Exception):
    """Root of every error raised by hub.face."""


class ModelError(FaceError):
    """A model file is missing, unreadable, or has the wrong input/output shape."""


class ModelIntegrityError(ModelError):
    """A downloaded model does not have the expected sha256."""


class RuntimeUnavailableError(FaceError):
    """No TFLite runtime could be loaded; ``reasons`` maps runtime -> why."""

    def __init__(self, message: str, reasons: dict[str, str]):
        super().__init__(message)
        self.reasons = reasons


class ImageError(FaceError):
    """An image could not be decoded (corrupt, truncated, not an image)."""


class EnrollmentRefused(FaceError):
    """A photo was refused for enrollment; ``reason`` is a stable code."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"enrollment refused: {reason}" + (f" ({detail})" if detail else ""))
        self.reason = reason
        self.detail = detail


class GalleryError(FaceError):
    """The embedding store failed, or a resident id is unknown."""


class SourceError(FaceError):
    """A frame source failed to open, failed to read, or stalled."""


class ConfigError(FaceError):
    """The face section of the hub configuration is invalid (the message names the field)."""
