"""tools/lint.py: each rule fires on a small bad tree, stays quiet on good
code, and the repository itself is clean."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tools import lint

REPO_ROOT = Path(__file__).resolve().parents[2]


def write(root: Path, relpath: str, source: str) -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    return path


def rendered(root: Path, findings: list[lint.Finding]) -> list[str]:
    return [f.render(root) for f in findings]


def test_mpy_cross_reports_micropython_syntax_errors(tmp_path: Path) -> None:
    write(tmp_path, "firmware/anju/good.py", "from micropython import const\n\nX = const(1)\n")
    # Valid CPython 3.11, rejected by MicroPython's compiler (no match statement).
    write(tmp_path, "firmware/anju/bad.py", "def f(x):\n    match x:\n        case 1:\n            return 1\n")
    write(tmp_path, "firmware/door_sensor/main.py", "def broken(:\n    pass\n")
    findings = lint.check_mpy_cross(tmp_path)
    assert {f.path.name for f in findings} == {"bad.py", "main.py"}, rendered(tmp_path, findings)
    main = next(f for f in findings if f.path.name == "main.py")
    assert main.line == 1
    assert main.message.startswith("mpy-cross:")


@pytest.mark.parametrize("module", sorted(lint.HARDWARE_MODULES))
def test_hardware_import_outside_shell_is_reported(tmp_path: Path, module: str) -> None:
    write(tmp_path, "firmware/anju/codec.py", f"import os\nimport {module}\n")
    write(tmp_path, "hub/transport.py", f"from {module} import something\n")
    write(tmp_path, "firmware/door_sensor/helpers.py", f"import {module}.sub\n")
    # Allowed places:
    write(tmp_path, "firmware/anju/shell/pins.py", f"import {module}\n")
    write(tmp_path, "firmware/door_sensor/main.py", f"import {module}\n")
    write(tmp_path, "simulator/shims.py", f"import {module}\n")
    findings = lint.check_hardware_imports(tmp_path)
    assert sorted((str(f.path.relative_to(tmp_path)), f.line) for f in findings) == [
        ("firmware/anju/codec.py", 2),
        ("firmware/door_sensor/helpers.py", 1),
        ("hub/transport.py", 1),
    ]
    assert all(f"'{module}'" in f.message for f in findings)


def test_similar_names_are_not_hardware(tmp_path: Path) -> None:
    write(tmp_path, "hub/ingest/ble.py", "import bluetooth_data_tools\nimport networkx_like\nfrom .machine import x\n")
    assert lint.check_hardware_imports(tmp_path) == []


@pytest.mark.parametrize("module", sorted(lint.CPYTHON_ONLY_MODULES))
def test_cpython_only_module_in_firmware_is_reported(tmp_path: Path, module: str) -> None:
    write(tmp_path, "firmware/anju/state.py", f"import struct\nfrom {module} import thing\n")
    write(tmp_path, "firmware/anju/shell/radio.py", f"import {module}\n")
    write(tmp_path, "hub/ok.py", f"import {module}\n")  # hub is CPython: allowed
    findings = lint.check_firmware_cpython_modules(tmp_path)
    assert sorted((f.path.name, f.line) for f in findings) == [("radio.py", 1), ("state.py", 2)]


def test_asyncio_is_allowed_in_firmware(tmp_path: Path) -> None:
    write(tmp_path, "firmware/anju/loop.py", "import asyncio\n")
    assert lint.check_firmware_cpython_modules(tmp_path) == []


@pytest.mark.parametrize("folder", lint.PROJECT_DIRS)
def test_bare_except_is_reported_everywhere(tmp_path: Path, folder: str) -> None:
    write(
        tmp_path,
        f"{folder}/mod.py",
        """
        try:
            x = 1
        except ValueError:
            pass
        try:
            x = 2
        except:
            pass
        """,
    )
    findings = lint.check_bare_except(tmp_path)
    assert rendered(tmp_path, findings) == [f"{folder}/mod.py:7: bare 'except:'; name the exceptions you expect"]


@pytest.mark.parametrize(
    "source",
    [
        "import time\nasync def poll():\n    time.sleep(1)\n",
        "import time as t\nasync def poll():\n    if True:\n        t.sleep(0.1)\n",
        "from time import sleep\nasync def poll():\n    sleep(1)\n",
        "import utime\nasync def poll():\n    utime.sleep_ms(10)\n",
        "import time\nclass A:\n    async def poll(self):\n        for _ in range(3):\n            time.sleep_us(5)\n",
    ],
    ids=["time.sleep", "alias", "from-import", "utime.sleep_ms", "method-in-loop"],
)
def test_sleep_in_async_is_reported(tmp_path: Path, source: str) -> None:
    write(tmp_path, "hub/poller.py", source)
    findings = lint.check_sleep_in_async(tmp_path)
    assert len(findings) == 1, rendered(tmp_path, findings)
    assert "async def poll" in findings[0].message


@pytest.mark.parametrize(
    "source",
    [
        "import time\ndef poll():\n    time.sleep(1)\n",
        "import asyncio\nasync def poll():\n    await asyncio.sleep(1)\n",
        "import time\nasync def poll(loop):\n    def blocking():\n        time.sleep(1)\n    await loop.run_in_executor(None, blocking)\n",
    ],
    ids=["sync-def", "asyncio.sleep", "nested-sync-helper"],
)
def test_sleep_outside_async_is_fine(tmp_path: Path, source: str) -> None:
    write(tmp_path, "simulator/poller.py", source)
    assert lint.check_sleep_in_async(tmp_path) == []


def test_unparsable_file_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "host_tools/broken.py", "def f(:\n")
    findings = lint.check_syntax(tmp_path)
    assert [(f.path.name, f.line) for f in findings] == [("broken.py", 1)]


def test_skips_virtualenvs_and_caches(tmp_path: Path) -> None:
    write(tmp_path, "tools/.venv/lib/x.py", "try:\n    pass\nexcept:\n    pass\n")
    write(tmp_path, "hub/__pycache__/x.py", "try:\n    pass\nexcept:\n    pass\n")
    assert lint.run_all(tmp_path) == []


def test_main_exit_status_and_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "hub/store.py", "try:\n    pass\nexcept:\n    pass\n")
    assert lint.main(["--root", str(tmp_path)]) == 1
    assert "hub/store.py:3: bare 'except:'" in capsys.readouterr().out
    (tmp_path / "hub/store.py").write_text("x = 1\n", encoding="utf-8")
    assert lint.main(["--root", str(tmp_path)]) == 0


def test_hub_module_outside_a_stage_package_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "hub/__init__.py", '"""root"""\n')
    write(tmp_path, "hub/store.py", "x = 1\n")
    write(tmp_path, "hub/frames.py", "x = 1\n")
    write(tmp_path, "hub/verify/__init__.py", '"""Verify: frames in, readings out."""\n')
    write(tmp_path, "hub/forward/__init__.py", "x = 1\n")
    findings = lint.check_hub_layout(tmp_path)
    assert rendered(tmp_path, findings) == [
        "hub/frames.py:1: hub module outside a stage package; move it into the package of its "
        "stage (hub/ingest, hub/verify, ...)",
        "hub/forward/__init__.py:1: stage package without a docstring saying what it does and "
        "what it must never do",
    ]


@pytest.mark.parametrize("importer", [
    "from hub.b import thing\n",                           # a name from a module
    "from hub import b\n",                                 # a module from its package
    "import hub.b\n",
    "def later():\n    from hub.b import thing\n",        # deferred: still a cycle
    "from .b import thing\n",
])
def test_hub_import_cycle_is_reported(tmp_path: Path, importer: str) -> None:
    write(tmp_path, "hub/__init__.py", "")
    write(tmp_path, "hub/a.py", importer)
    write(tmp_path, "hub/b.py", "import json\n\nfrom hub import a\n")
    findings = lint.check_hub_import_cycles(tmp_path)
    assert [f.message for f in findings] in (["import cycle: hub.a -> hub.b -> hub.a"],
                                             ["import cycle: hub.b -> hub.a -> hub.b"])


def test_package_importing_its_own_modules_is_not_a_cycle(tmp_path: Path) -> None:
    write(tmp_path, "hub/__init__.py", "")
    write(tmp_path, "hub/verify/__init__.py", "from hub.verify import frames, lock\n")
    write(tmp_path, "hub/verify/frames.py", "TYPES = {}\n")
    write(tmp_path, "hub/verify/lock.py", "from hub.verify import frames\n")
    write(tmp_path, "hub/verify/use.py", "from hub.verify.frames import TYPES\nfrom hub import verify\n")
    assert lint.check_hub_import_cycles(tmp_path) == []


# built from parts so that this file does not trip the check itself
@pytest.mark.parametrize("line", [
    "DATA = REPO" + '.parent / "face"\n',
    "DATA = Path(__file__).parents[2]" + ' / "shared"\n',
    'open("..' + '/shared/face/README.md")\n',
])
def test_path_outside_the_clone_is_reported(tmp_path: Path, line: str) -> None:
    write(tmp_path, "tests/face/conftest.py", "from pathlib import Path\n" + line)
    write(tmp_path, "hub/ok.py", 'X = "../relative/in/the/hub/is/not/checked"\n')
    findings = lint.check_paths_outside_clone(tmp_path)
    assert rendered(tmp_path, findings) == [
        "tests/face/conftest.py:2: path outside the repository; a clone has nothing beside it "
        "(put test data in tests/data/)"]


def test_paths_in_the_clone_are_fine(tmp_path: Path) -> None:
    write(tmp_path, "tests/x.py", 'REPO = Path(__file__).resolve().parents[1]\nDATA = REPO / "tests" / "data"\n')
    (tmp_path / "Makefile").write_text("test:\n\tpython -m pytest tests\n")
    assert lint.check_paths_outside_clone(tmp_path) == []


def test_reads_beside_the_clone_are_recorded(tmp_path: Path) -> None:
    from tests.outside_reads import OutsideReads, is_outside
    repo, shared = tmp_path / "work" / "anju", tmp_path / "work" / "shared"
    (repo / "tests").mkdir(parents=True)
    shared.mkdir()
    (shared / "photo.jpg").write_bytes(b"x")
    assert is_outside(str(shared / "photo.jpg"), str(repo), [])
    assert not is_outside(str(repo / "tests" / "x"), str(repo), [])
    assert not is_outside("/usr/lib/python3/os.py", str(repo), [])
    assert not is_outside(str(shared / "photo.jpg"), str(repo), [str(shared)])  # ANJU_FACE_DATA
    guard = OutsideReads(repo, allowed=[])
    guard.hook("open", (str(shared / "photo.jpg"), "rb", 0))
    guard.hook("os.scandir", (str(shared),))
    guard.hook("open", (str(repo / "tests" / "x"), "r", 0))
    guard.hook("open", (3, "r", 0))  # a file descriptor
    guard.hook("sqlite3.connect", (":memory:",))
    assert guard.take() == [str(shared / "photo.jpg"), str(shared)]
    assert guard.take() == []


def test_repository_is_clean() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "lint.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
