"""Signed release manifests (docs/ota.md): encoding, and the device's checks.

A release is a manifest plus its files. The manifest is a canonical byte
string (the *body*, layout in docs/ota.md) followed by the 64-byte Ed25519
signature of the body by the release key. The host (`anju release build`)
encodes with `encode_body`; the device checks with `check_release`, in this
order: signature by the configured public key over the raw bytes first
(nothing untrusted is parsed before it), then a strict parse, then policy
(app, port, runtime, .mpy version, version not older unless the signed
downgrade flag is set). Each file is then checked against its entry
(`file_problem`) as it lands on flash.

Every refusal is a `ReleaseRefused` with a reason naming what was wrong; the
checks are pure and change nothing. This module must never write files.
"""
import struct

from anju.ota import ed25519

MAGIC = b"AJRM"
FORMAT = 1
SIG_LEN = 64
FLAG_ALLOW_DOWNGRADE = 0x01
_KNOWN_FLAGS = FLAG_ALLOW_DOWNGRADE
MAX_FILES = 256
MAX_BODY = 16384
_NAME_CHARS = b"abcdefghijklmnopqrstuvwxyz0123456789_"
_PATH_CHARS = _NAME_CHARS + b"ABCDEFGHIJKLMNOPQRSTUVWXYZ-./"


class ReleaseRefused(ValueError):
    """The release must not be installed; str(exc) is the reason."""


class Manifest:
    def __init__(self, app, version, runtime, mpy, ports, files, allow_downgrade=False):
        self.app = app                  # "door_sensor"
        self.version = tuple(version)   # (major, minor, patch)
        self.runtime = tuple(runtime)   # minimum MicroPython version (1, 27, 0)
        self.mpy = tuple(mpy)           # .mpy (version, sub-version) the files need (6, 3)
        self.ports = tuple(ports)       # ("esp32", "rp2")
        self.files = tuple(files)       # ((path, size, sha256), ...)
        self.allow_downgrade = bool(allow_downgrade)


def parse_version(text, parts=3, limit=0xFFFF):
    """'1.2.0' -> (1, 2, 0); ReleaseRefused on anything else."""
    items = str(text).split(".")
    if len(items) != parts:
        raise ReleaseRefused("version %r is not %d numbers separated by dots" % (text, parts))
    out = []
    for item in items:
        if not item or not item.isdigit() or (len(item) > 1 and item[0] == "0"):
            raise ReleaseRefused("version %r has a part that is not a plain number" % (text,))
        n = int(item)
        if n > limit:
            raise ReleaseRefused("version %r has a part above %d" % (text, limit))
        out.append(n)
    return tuple(out)


def version_text(version):
    return ".".join(str(n) for n in version)


def _check_name(kind, value, chars, limit):
    raw = value.encode() if isinstance(value, str) else bytes(value)
    if not raw or len(raw) > limit:
        raise ReleaseRefused("%s %r must be 1..%d characters" % (kind, value, limit))
    for c in raw:
        if c not in chars:
            raise ReleaseRefused("%s %r has a character outside %s" % (kind, value, chars.decode()))
    return raw


def check_path(path):
    """A release path is relative, plain and stays inside its slot."""
    raw = _check_name("path", path, _PATH_CHARS, 96)
    if raw[0:1] == b"/" or raw[-1:] == b"/":
        raise ReleaseRefused("path %r must be relative and name a file" % (path,))
    for part in raw.split(b"/"):
        if part in (b"", b".", b".."):
            raise ReleaseRefused("path %r has an empty, '.' or '..' part" % (path,))
    return raw


def encode_body(m):
    """The canonical bytes that are signed (docs/ota.md, "Manifest body")."""
    out = bytearray(MAGIC)
    out.append(FORMAT)
    out.append(FLAG_ALLOW_DOWNGRADE if m.allow_downgrade else 0)
    app = _check_name("app", m.app, _NAME_CHARS, 32)
    out.append(len(app))
    out.extend(app)
    for n in m.version:
        if not 0 <= n <= 0xFFFF:
            raise ReleaseRefused("version part %r out of range" % (n,))
    out.extend(struct.pack(">HHH", *m.version))
    for n in tuple(m.runtime) + tuple(m.mpy):
        if not 0 <= n <= 0xFF:
            raise ReleaseRefused("runtime or mpy version part %r out of range" % (n,))
    out.extend(struct.pack(">BBBBB", m.runtime[0], m.runtime[1], m.runtime[2], m.mpy[0], m.mpy[1]))
    ports = sorted(set(m.ports))
    if not ports or len(ports) > 8:
        raise ReleaseRefused("a release names 1..8 ports")
    out.append(len(ports))
    for port in ports:
        raw = _check_name("port", port, _NAME_CHARS, 16)
        out.append(len(raw))
        out.extend(raw)
    files = sorted(m.files)
    if not files or len(files) > MAX_FILES:
        raise ReleaseRefused("a release has 1..%d files" % MAX_FILES)
    out.extend(struct.pack(">H", len(files)))
    seen = None
    for path, size, digest in files:
        raw = check_path(path)
        if raw == seen:
            raise ReleaseRefused("path %r appears twice" % (path,))
        seen = raw
        if len(digest) != 32 or not 0 <= size <= 0xFFFFFFFF:
            raise ReleaseRefused("file %r needs a 32-byte SHA-256 and a 32-bit size" % (path,))
        out.append(len(raw))
        out.extend(raw)
        out.extend(struct.pack(">I", size))
        out.extend(digest)
    if len(out) > MAX_BODY:
        raise ReleaseRefused("manifest body is %d bytes, above %d" % (len(out), MAX_BODY))
    return bytes(out)


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n, what):
        end = self.pos + n
        if end > len(self.data):
            raise ReleaseRefused("manifest is truncated in %s" % what)
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def u8(self, what):
        return self.take(1, what)[0]

    def text(self, what, chars, limit):
        raw = bytes(self.take(self.u8(what), what))
        _check_name(what, raw, chars, limit)
        return raw.decode()


def decode_body(body):
    """Parse a body strictly: one encoding per manifest (the one encode_body
    makes); trailing bytes, unknown flags, unsorted or repeated entries are
    refused."""
    r = _Reader(body)
    if bytes(r.take(4, "magic")) != MAGIC:
        raise ReleaseRefused("not an anju release manifest (magic)")
    fmt = r.u8("format")
    if fmt != FORMAT:
        raise ReleaseRefused("manifest format %d is not supported (this device reads %d)" % (fmt, FORMAT))
    flags = r.u8("flags")
    if flags & ~_KNOWN_FLAGS:
        raise ReleaseRefused("manifest has unknown flags 0x%02x" % flags)
    app = r.text("app", _NAME_CHARS, 32)
    version = struct.unpack(">HHH", r.take(6, "version"))
    rt = struct.unpack(">BBBBB", r.take(5, "runtime"))
    ports = [r.text("port", _NAME_CHARS, 16) for _ in range(r.u8("ports"))]
    count = struct.unpack(">H", r.take(2, "file count"))[0]
    if not ports or len(ports) > 8 or count == 0 or count > MAX_FILES:
        raise ReleaseRefused("manifest names %d ports and %d files" % (len(ports), count))
    files = []
    for _ in range(count):
        path = r.text("path", _PATH_CHARS, 96)
        check_path(path)
        size = struct.unpack(">I", r.take(4, "file size"))[0]
        files.append((path, size, bytes(r.take(32, "file hash"))))
    if r.pos != len(body):
        raise ReleaseRefused("manifest has %d bytes after its last file" % (len(body) - r.pos))
    # One encoding per manifest: what encode_body makes, sorted and without repeats.
    for seq in (ports, [f[0] for f in files]):
        for i in range(1, len(seq)):
            if not seq[i - 1] < seq[i]:
                raise ReleaseRefused("manifest is not in canonical form (%r before %r)"
                                     % (seq[i - 1], seq[i]))
    return Manifest(app, version, rt[:3], rt[3:], ports, files, flags & FLAG_ALLOW_DOWNGRADE)


def sign_split(blob):
    """(body, signature) of a manifest file, or ReleaseRefused."""
    if len(blob) < SIG_LEN + 4 or len(blob) > MAX_BODY + SIG_LEN:
        raise ReleaseRefused("manifest is %d bytes: truncated or not a manifest" % len(blob))
    return blob[:-SIG_LEN], blob[-SIG_LEN:]


def check_release(blob, public_key, device):
    """The verified Manifest of `blob` for this device, or ReleaseRefused.

    `device` is a dict: app, version (tuple), port, runtime (MicroPython
    version tuple), mpy ((version, sub) the interpreter loads)."""
    body, sig = sign_split(blob)
    reason = ed25519.check(public_key, body, sig)
    if reason is not None:
        raise ReleaseRefused("signature refused: %s (not signed by this site's release key?)" % reason)
    m = decode_body(body)
    if m.app != device["app"]:
        raise ReleaseRefused("release is for app %s, this device runs %s" % (m.app, device["app"]))
    if device["port"] not in m.ports:
        raise ReleaseRefused("release is for ports %s, this device is %s"
                             % (", ".join(m.ports), device["port"]))
    if tuple(device["runtime"]) < m.runtime:
        raise ReleaseRefused("release needs MicroPython %s or later, this device has %s"
                             % (version_text(m.runtime), version_text(device["runtime"])))
    if device["mpy"] is None or tuple(device["mpy"]) != m.mpy:
        if device["mpy"] is None:
            raise ReleaseRefused("this interpreter loads no .mpy files")
        raise ReleaseRefused("release files are .mpy v%d.%d, this device loads v%d.%d"
                             % (m.mpy + tuple(device["mpy"])))
    running = tuple(device["version"])
    if m.version == running:
        raise ReleaseRefused("release %s is the version already running" % version_text(m.version))
    if m.version < running and not m.allow_downgrade:
        raise ReleaseRefused("release %s is older than the running %s and does not allow a downgrade"
                             % (version_text(m.version), version_text(running)))
    return m


def runtime_info(impl):
    """(MicroPython version, (.mpy version, sub-version)) of the running
    interpreter, from `sys.implementation` (its `_mpy`: the low byte is the
    version, bits 8-9 the sub-version); the second is None where the
    interpreter does not say (CPython)."""
    mpy = getattr(impl, "_mpy", None)
    version = tuple(impl.version[:3])
    if mpy is None:
        return version, None
    return version, (mpy & 0xFF, (mpy >> 8) & 3)


def file_problem(entry, size, digest):
    """None if a received file matches its manifest entry, else the reason."""
    path, want_size, want_digest = entry
    if size != want_size:
        return "file %s is %d bytes, the manifest says %d" % (path, size, want_size)
    if digest != want_digest:
        return "file %s does not match its SHA-256 in the manifest" % path
    return None
