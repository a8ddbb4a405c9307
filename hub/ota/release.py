"""A signed release on the hub: checked again before anything is offered.

The hub holds only the release's public key (site file `hub.ota.release_pubkey`,
the 64 hex digits `anju release keygen` printed). `load` checks the manifest's
Ed25519 signature with `cryptography` and every file's size and SHA-256
(host_tools/release.verify, the same check `anju release verify` makes), and
refuses files the manifest does not list; only then are its bytes kept.
"""
import base64
import shutil
import tempfile
from pathlib import Path

from hub.ota import OtaError, wire


class Release:
    __slots__ = ("id", "app", "version", "files", "blob", "data", "allow_downgrade")

    def __init__(self, m, blob, data):
        self.id = wire.release_id(blob).hex()
        self.app = m.app
        self.version = ".".join(map(str, m.version))
        self.files = [(p, s) for p, s, _ in m.files]
        self.blob = blob
        self.data = data  # [bytes] in manifest order
        self.allow_downgrade = m.allow_downgrade

    def describe(self):
        return {"id": self.id, "app": self.app, "version": self.version,
                "files": len(self.files), "bytes": sum(s for _, s in self.files),
                "allow_downgrade": self.allow_downgrade}


def load(rel_dir, pubkey_hex):
    """The Release in directory `rel_dir` if it verifies with `pubkey_hex`."""
    from host_tools import release as host_release
    try:
        m = host_release.verify(rel_dir, pubkey_hex)
    except host_release.ReleaseError as exc:
        raise OtaError("release refused: %s" % exc) from exc
    root = Path(rel_dir)
    blob = (root / host_release.MANIFEST_BIN).read_bytes()
    data = [(root / host_release.FILES_DIR / p).read_bytes() for p, _, _ in m.files]
    return Release(m, blob, data)


def from_upload(doc, pubkey_hex):
    """A Release from the HTTP body `{"manifest": base64, "files": {path: base64}}`
    (what `anju fleet update` sends), checked exactly as `load` checks a directory."""
    if not isinstance(doc, dict) or not isinstance(doc.get("manifest"), str) \
            or not isinstance(doc.get("files"), dict):
        raise OtaError("release must be {\"manifest\": base64, \"files\": {path: base64}}")
    from host_tools import release as host_release
    tmp = Path(tempfile.mkdtemp(prefix="anju-release-"))
    try:
        try:
            (tmp / host_release.MANIFEST_BIN).write_bytes(base64.b64decode(doc["manifest"],
                                                                           validate=True))
            for path, text in doc["files"].items():
                parts = path.split("/") if isinstance(path, str) else []
                if not parts or any(p in ("", ".", "..") for p in parts) or not isinstance(text, str):
                    raise OtaError("release files: bad path %r" % (path,))
                out = tmp.joinpath(host_release.FILES_DIR, *parts)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(base64.b64decode(text, validate=True))
        except (ValueError, TypeError) as exc:
            raise OtaError("release: manifest and files must be base64") from exc
        return load(tmp, pubkey_hex)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def to_upload(rel_dir):
    """The HTTP body for the release in `rel_dir` (the operator's side)."""
    from host_tools import release as host_release
    root = Path(rel_dir)
    files = {}
    for path in sorted((root / host_release.FILES_DIR).rglob("*")):
        if path.is_file():
            rel = path.relative_to(root / host_release.FILES_DIR).as_posix()
            files[rel] = base64.b64encode(path.read_bytes()).decode()
    manifest = (root / host_release.MANIFEST_BIN).read_bytes()
    return {"manifest": base64.b64encode(manifest).decode(), "files": files}
