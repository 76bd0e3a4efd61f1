"""tests/failed_tests.py names the tests a real pytest run failed, from its JUnit report."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.failed_tests import failed_tests, main

SAMPLE = '''
import pytest

def test_passes():
    assert True

def test_fails():
    assert 1 == 2, "one is not two"

@pytest.fixture
def broken():
    raise RuntimeError("the fixture broke")

def test_errors(broken):
    pass
'''


def test_names_each_failed_and_errored_test_with_its_reason(tmp_path: Path,
                                                             capsys) -> None:  # noqa: ANN001 - pytest's capsys
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    report = tmp_path / "report.xml"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", "/dev/null",
                          f"--junitxml={report}", str(tmp_path / "test_sample.py")],
                         cwd=tmp_path, capture_output=True, text=True, check=False)
    assert run.returncode == 1, run.stdout + run.stderr
    found = {test_id.rsplit("::", 1)[1]: (outcome, message) for test_id, outcome, message in failed_tests(report)}
    assert set(found) == {"test_fails", "test_errors"}, found
    assert found["test_fails"][0] == "failure" and "one is not two" in found["test_fails"][1]
    assert found["test_errors"][0] == "error" and "the fixture broke" in found["test_errors"][1]
    assert main(["failed_tests.py", str(report)]) == 0
    assert "2 failed or errored test(s)" in capsys.readouterr().out


def test_says_so_when_pytest_wrote_no_report(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["failed_tests.py", str(tmp_path / "missing.xml")]) == 0
    assert "wrote no report" in capsys.readouterr().out
