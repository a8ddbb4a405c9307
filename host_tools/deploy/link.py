"""The board's raw REPL, through mpremote's library API (SerialTransport).

Everything runs as short snippets in the raw REPL (mpremote uses raw-paste
mode when the board offers it, with its flow control). Files are hashed on
the board (`hashlib.sha256`, 512 bytes at a time, so a big file needs no big
buffer), and written as `PATH.part` in base64 chunks, then renamed over
`PATH`: a file is either the old one or the new one, never half of each. A
`.part` left by a pulled cable is removed by the next deploy.
"""
import ast
import binascii

import serial
from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport

from host_tools.deploy import DeployFailed

CHUNK = 2048  # bytes per write snippet (base64: ~2.7 KB of source)
OPEN_TIMEOUT_S = 10

# defines _w(p) -> [(path, size, sha256 hex)] for every file under p
WALK = """
import os, hashlib, binascii
def _h(p):
    d = hashlib.sha256()
    b = bytearray(512)
    m = memoryview(b)
    with open(p, 'rb') as f:
        while True:
            n = f.readinto(b)
            if not n:
                break
            d.update(m[:n])
    return binascii.hexlify(d.digest()).decode()
def _w(p, out):
    for e in os.ilistdir(p or '/'):
        q = p + '/' + e[0]
        if e[1] == 0x4000:
            _w(q, out)
        else:
            out.append((q[1:], e[3] if len(e) > 3 else -1, _h(q)))
    return out
"""


class BoardLink:
    def __init__(self, port):
        self.port = port
        self.t = None
        try:
            self.t = SerialTransport(port, baudrate=115200)
            self.t.enter_raw_repl(soft_reset=False, timeout_overall=OPEN_TIMEOUT_S)
        except (TransportError, serial.SerialException, OSError) as exc:
            self.close()
            raise DeployFailed("no MicroPython REPL answered on %s: %s (is MicroPython "
                               "flashed, and the port right?)" % (port, _why(exc))) from exc
        self._defined = False

    def _call(self, what, fn, *args):
        try:
            return fn(*args)
        except (TransportError, serial.SerialException, OSError) as exc:
            raise DeployFailed("the board on %s stopped answering while %s: %s"
                               % (self.port, what, _why(exc))) from exc

    def eval(self, what, expr):
        out = self._call(what, self.t.exec, "print(repr(%s))" % expr)
        return ast.literal_eval(out.decode().strip())

    def exec(self, what, code):
        return self._call(what, self.t.exec, code)

    def info(self):
        """What the board runs: {"mpy": sys.implementation._mpy, "release", "machine"}."""
        return self.eval("asking which MicroPython it runs",
                         "(lambda i: {'mpy': getattr(i, '_mpy', None), "
                         "'release': '.'.join(str(v) for v in i.version[:3]), "
                         "'machine': getattr(i, '_machine', '')})"
                         "(__import__('sys').implementation)")

    def files(self):
        """{path: (size, sha256 hex)} of every file on the board's file system."""
        if not self._defined:
            self.exec("reading its files", WALK)
            self._defined = True
        rows = self.eval("hashing its files", "_w('', [])")
        return {p: (size, digest) for p, size, digest in rows}

    def read(self, path):
        return self._call("reading " + path, self.t.fs_readfile, "/" + path)

    def mkdir(self, path):
        self.exec("making " + path,
                  "import os\ntry:\n os.mkdir(%r)\nexcept OSError:\n pass" % ("/" + path))

    def remove(self, path):
        self.exec("removing " + path,
                  "import os\ntry:\n os.remove(%r)\nexcept OSError:\n pass" % ("/" + path))

    def write(self, path, data, progress=None, rename=True):
        """`data` into `path` through `path.part` and a rename (with rename=False
        the file stays `path.part`: commit it with rename()); progress(n) after
        each chunk."""
        dest = "/" + path
        part = dest + ".part"
        self.exec("opening " + path,
                  "import binascii\n_f = open(%r, 'wb')\n_d = binascii.a2b_base64" % part)
        for i in range(0, len(data), CHUNK):
            chunk = binascii.b2a_base64(data[i:i + CHUNK], newline=False)
            self.exec("writing " + path, "_f.write(_d(%r))" % chunk)
            if progress is not None:
                progress(min(CHUNK, len(data) - i))
        self.exec("closing " + path, "_f.close()")
        if rename:
            self.rename(path)

    def rename(self, path):
        """`path.part` over `path`: one LittleFS rename, the file is old or new."""
        dest = "/" + path
        self.exec("renaming " + path, "import os\nos.rename(%r, %r)" % (dest + ".part", dest))

    def has(self, path):
        return path in self.files()

    def soft_reset(self):
        """Leave the raw REPL and soft-reset from the friendly one: main.py runs."""
        def reset():
            self.t.exit_raw_repl()
            self.t.serial.write(b"\x04")
            self.t.read_until(1, b"soft reboot\r\n", timeout=10)
        self._call("restarting", reset)

    def close(self):
        if self.t is not None:
            try:
                self.t.close()
            except (TransportError, serial.SerialException, OSError):
                pass
            self.t = None


def _why(exc):
    """One line: the last of a traceback the board printed, or the error itself."""
    text = getattr(exc, "error_output", None) or str(exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__
