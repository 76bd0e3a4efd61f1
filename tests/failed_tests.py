"""Print the tests a pytest run failed, from its JUnit XML report.

`make test` runs pytest before molecule, so pytest's own summary scrolls far up
a CI log that may only show its tail. At its end `make test` calls this to
name each failed or errored test again, with the first line of its reason.

    python tests/failed_tests.py REPORT.xml
"""
from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

OUTCOMES = ("failure", "error")


def failed_tests(report: Path) -> list[tuple[str, str, str]]:
    """(test id, outcome, first line of its message) for each failed or errored test."""
    found: list[tuple[str, str, str]] = []
    for case in ET.parse(report).getroot().iter("testcase"):
        for outcome in OUTCOMES:
            node = case.find(outcome)
            if node is None:
                continue
            test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
            message = (node.get("message") or node.text or "").strip().splitlines()
            found.append((test_id, outcome, message[0][:300] if message else ""))
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} REPORT.xml", file=sys.stderr)
        return 2
    report = Path(argv[1])
    if not report.is_file():
        print(f"pytest wrote no report at {report} (it did not get to its end)")
        return 0
    found = failed_tests(report)
    print(f"pytest report {report}: {len(found)} failed or errored test(s)")
    for test_id, outcome, message in found:
        print(f"  {outcome.upper()} {test_id}: {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
