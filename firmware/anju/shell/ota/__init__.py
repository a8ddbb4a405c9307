"""The slot selector a device boots through and its file storage (docs/ota.md)."""
