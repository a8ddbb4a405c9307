"""Every firmware-core test module, run again under real MicroPython.

pytest already runs the same modules under CPython; this runs them on the
MicroPython unix port (1.29-preview, 64-bit) with only ``firmware/anju`` (no
shell) on the path and an ESP32-sized heap. The second half proves the harness
can fail: a generated module with failing tests, a module that cannot be
imported, a guest that spins past its time limit and one that holds more than
the heap are all reported as failures naming what went wrong; and the garbage
collector really runs, so a module may allocate far more than the heap in total.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.firmware_core import mp_harness

pytestmark = pytest.mark.micropython

CORE_MODULES = mp_harness.discover_core_test_modules()


@pytest.mark.parametrize("module_path", CORE_MODULES, ids=[p.stem for p in CORE_MODULES])
def test_core_module_under_micropython(module_path: Path) -> None:
    result = mp_harness.run_module(module_path)
    if not result.ok:
        pytest.fail(result.report(), pytrace=False)


def test_harness_finds_core_modules() -> None:
    names = [p.name for p in CORE_MODULES]
    assert "test_harness_selfcheck.py" in names
    assert "test_on_micropython.py" not in names
    assert "test_lock_decide.py" in names and "test_lock_wire.py" in names
    assert "test_lock_vectors.py" not in names  # CPython only


def _write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def test_failing_guest_tests_are_reported(tmp_path: Path) -> None:
    module = _write(
        tmp_path,
        "test_generated_failures.py",
        """
        import sys
        CALLS = []

        def test_zz_first_in_source():
            CALLS.append("zz")

        def test_assert_fails():
            CALLS.append("assert")
            assert 1 + 1 == 3, "arithmetic is broken"

        def test_raises_value_error():
            CALLS.append("value")
            raise ValueError("bad frame")

        def test_needs_fixture(tmp_path):
            pass

        def test_aa_passes_and_sees_order():
            assert CALLS == ["zz", "assert", "value"], CALLS
            assert sys.implementation.name == "micropython"
        """,
    )
    result = mp_harness.run_module(module)
    assert result.error is None, result.report()
    assert result.passed == ["test_zz_first_in_source", "test_aa_passes_and_sees_order"]
    failed = dict(result.failed)
    assert list(failed) == ["test_assert_fails", "test_raises_value_error", "test_needs_fixture"]
    assert "arithmetic is broken" in failed["test_assert_fails"]
    assert "AssertionError" in failed["test_assert_fails"]
    assert "ValueError('bad frame'" in failed["test_raises_value_error"]
    assert "TypeError" in failed["test_needs_fixture"]
    assert not result.ok
    report = result.report()
    for name in failed:
        assert f"FAILED {name}" in report


def test_core_module_test_fails_on_guest_failure(tmp_path: Path) -> None:
    """The parametrized test itself fails (not just the result object)."""
    module = _write(tmp_path, "test_generated_one_failure.py", "def test_broken():\n    assert False, 'nope'\n")
    with pytest.raises(pytest.fail.Exception, match="FAILED test_broken"):
        test_core_module_under_micropython(module)


def test_import_error_is_reported(tmp_path: Path) -> None:
    module = _write(
        tmp_path,
        "test_generated_import_error.py",
        """
        import dataclasses  # CPython only: MicroPython has no dataclasses

        def test_never_runs():
            pass
        """,
    )
    result = mp_harness.run_module(module)
    assert not result.ok
    assert result.error is not None and "import failed" in result.error
    assert "dataclasses" in result.error
    assert result.missing == ["test_never_runs"]


def test_module_without_tests_is_not_a_pass(tmp_path: Path) -> None:
    module = _write(tmp_path, "test_generated_empty.py", "X = 1\n")
    result = mp_harness.run_module(module)
    assert not result.ok
    assert "no test_* functions ran" in result.report()


def test_timeout_is_reported(tmp_path: Path) -> None:
    module = _write(
        tmp_path,
        "test_generated_spin.py",
        """
        def test_spins_forever():
            while True:
                pass
        """,
    )
    result = mp_harness.run_module(module, wall_timeout_seconds=0.5)
    assert not result.ok
    assert result.error is not None and "did not finish" in result.error and "timed out" in result.error


HEAP_MODULE = """
import gc

HEAP_BYTES = {heap}

def test_heap_is_the_board_budget():
    gc.collect()
    assert gc.mem_free() + gc.mem_alloc() <= HEAP_BYTES, (gc.mem_free(), gc.mem_alloc())

def test_dropped_buffers_are_collected():
    # 8 MiB in total, far more than the heap; only one buffer is alive at a time.
    for i in range(2048):
        buf = bytearray(4096)
        buf[0] = i & 0xFF
    gc.collect()
    assert gc.mem_alloc() < HEAP_BYTES // 2, gc.mem_alloc()

def test_holding_more_than_the_heap():
    held = []
    for _ in range(2 * HEAP_BYTES // 1024):
        held.append(bytearray(1024))
"""


def test_heap_limit_bites_and_gc_runs(tmp_path: Path) -> None:
    """A module that holds more than the board's heap fails; one that drops
    what it allocates passes however much it allocates in total."""
    heap = mp_harness.HEAP_BYTES
    module = _write(tmp_path, "test_generated_heap.py", HEAP_MODULE.format(heap=heap))
    result = mp_harness.run_module(module)
    assert result.error is None, result.report()
    assert result.passed == ["test_heap_is_the_board_budget", "test_dropped_buffers_are_collected"], result.report()
    failed = dict(result.failed)
    assert list(failed) == ["test_holding_more_than_the_heap"]
    assert "MemoryError" in failed["test_holding_more_than_the_heap"]
    # The same module holds its 2x heap once the limit is raised: the limit bit.
    bigger = mp_harness.run_module(module, heap_bytes=4 * heap)
    assert "test_holding_more_than_the_heap" in bigger.passed, bigger.report()


def test_guest_sees_only_the_staged_core(tmp_path: Path) -> None:
    """No host filesystem, no CPython path: the core, the module, frozen modules."""
    module = _write(
        tmp_path,
        "test_generated_paths.py",
        """
        import os
        import sys

        def test_search_path():
            assert sys.path == ["/input", ".frozen"], sys.path

        def test_filesystem_is_the_staged_dir_read_only():
            assert os.listdir("/") == ["input"], os.listdir("/")
            assert sorted(os.listdir("/input")) == ["anju", "test_generated_paths.py"]
            assert "shell" not in os.listdir("/input/anju")
            try:
                open("/input/new.txt", "w")
            except OSError:
                pass
            else:
                raise AssertionError("the staged dir is writable")
        """,
    )
    result = mp_harness.run_module(module)
    assert result.ok, result.report()


def test_core_is_importable_in_guest(tmp_path: Path) -> None:
    """The staged tree holds the core package but never the hardware shell."""
    if not mp_harness.FIRMWARE_CORE.is_dir():
        pytest.fail(f"{mp_harness.FIRMWARE_CORE} is missing")
    mp_harness.stage(_write(tmp_path, "test_x.py", "pass\n"), tmp_path / "staged")
    staged = tmp_path / "staged"
    assert (staged / "anju").is_dir()
    assert not (staged / "anju" / "shell").exists()
    assert (staged / "test_x.py").is_file()
