"""The key-encryption key (KEK) and the sealing of device keys with it.

Device keys in the registry are stored sealed with AES-256-GCM under a
32-byte KEK that lives in a file outside the database (`hub.kek_file`,
default /etc/anju/kek, created by `anju keys kek --out FILE`), so a copy of
the database alone reveals no key. Each seal uses a fresh random 96-bit nonce
and binds the ciphertext to where it belongs with the associated data
(site id, device id, key name): a sealed key copied to another device's row
does not open.

Errors: `KekError` (a `hub.ConfigError`): the KEK file is missing,
unreadable, the wrong size or readable by other users, or a sealed value does
not open with this KEK. This module must never log, repr or put into an
error message a KEK or a key.
"""
import os
import secrets
import stat

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub import ConfigError

KEK_LEN = 32
NONCE_LEN = 12
DEFAULT_KEK_FILE = "/etc/anju/kek"


class KekError(ConfigError):
    """The KEK cannot be used (the message says why and how to fix it)."""


def create(path):
    """Write a fresh random KEK to `path` with mode 0600; never overwrites."""
    path = str(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KekError("%s: already exists; a new KEK would make every sealed key unreadable. "
                       "Remove it yourself if that is really what you want" % path) from exc
    except OSError as exc:
        raise KekError("%s: cannot create: %s" % (path, exc.strerror)) from exc
    try:
        os.fchmod(fd, 0o600)  # whatever the umask said
        os.write(fd, secrets.token_bytes(KEK_LEN))
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def load(path):
    """The KEK bytes from `path`, or KekError naming the file and the fix."""
    path = str(path)
    hint = "create one with `anju keys kek --out %s`" % path
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise KekError("KEK file %s does not exist; %s" % (path, hint)) from exc
    except OSError as exc:
        raise KekError("KEK file %s: cannot stat: %s" % (path, exc.strerror)) from exc
    if not stat.S_ISREG(st.st_mode):
        raise KekError("KEK file %s is not a regular file" % path)
    if st.st_mode & (stat.S_IROTH | stat.S_IWOTH):
        raise KekError("KEK file %s is accessible by other users (mode %04o); "
                       "run `chmod 600 %s`" % (path, stat.S_IMODE(st.st_mode), path))
    try:
        with open(path, "rb") as f:
            data = f.read(KEK_LEN + 1)
    except OSError as exc:
        raise KekError("KEK file %s: cannot read: %s" % (path, exc.strerror)) from exc
    if len(data) != KEK_LEN:
        raise KekError("KEK file %s must hold exactly %d bytes, it holds %s; %s"
                       % (path, KEK_LEN, len(data) if len(data) <= KEK_LEN else "more",
                          hint.replace("create one", "create a new one elsewhere")))
    return data


def aad(site_id, device_id, name):
    return ("anju-key\0%s\0%s\0%s" % (site_id, device_id, name)).encode()


class KeyBox:
    """Seals and opens small secrets under one KEK."""

    def __init__(self, kek):
        if len(kek) != KEK_LEN:
            raise KekError("a KEK must be %d bytes" % KEK_LEN)
        self._aead = AESGCM(bytes(kek))

    def __repr__(self):
        return "KeyBox(<kek>)"

    def seal(self, plaintext, associated):
        nonce = secrets.token_bytes(NONCE_LEN)
        return nonce + self._aead.encrypt(nonce, bytes(plaintext), associated)

    def open(self, sealed, associated, what="a sealed key"):
        sealed = bytes(sealed)
        try:
            return self._aead.decrypt(sealed[:NONCE_LEN], sealed[NONCE_LEN:], associated)
        except (InvalidTag, ValueError) as exc:
            raise KekError("%s does not open with this KEK (wrong KEK file, or the database "
                           "row was altered)" % what) from exc
