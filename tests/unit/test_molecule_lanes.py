"""tests/molecule_lanes.py: every scenario runs in exactly one lane; a wrong name stops before anything runs."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.molecule_lanes import plan_lanes, scenarios

REPO = Path(__file__).resolve().parents[2]


def test_the_repos_scenarios_are_found() -> None:
    found = scenarios(REPO)
    assert {"default", "resume", "multihost", "rollback"} <= set(found), found
    assert "shared" not in found  # molecule/shared holds tasks, not a scenario


def test_a_scenario_no_lane_names_joins_the_shortest_lane() -> None:
    lanes = plan_lanes(["a,b", "c"], ["a", "b", "c", "d"])
    assert lanes == [["a", "b"], ["c", "d"]]
    assert plan_lanes([], ["a", "b"]) == [["a", "b"]]


@pytest.mark.parametrize(("spec", "message"), [(["a,x"], "no molecule scenario named x"),
                                               (["a", "a,b"], "in more than one lane: a")])
def test_a_wrong_lane_spec_is_refused_naming_the_scenario(spec: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_lanes(spec, ["a", "b"])
