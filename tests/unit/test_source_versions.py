"""Which Chroma versions the source reader accepts, and what it says about the others (issue #12)."""
from __future__ import annotations

from pathlib import Path

import pytest

from chroma_runbook.io.source import SUPPORTED, SourceRefused, check_version, distance_space, persist_version


@pytest.mark.parametrize("version,api", [("0.4.24", "v1"), ("0.4.0", "v1"), ("0.5.23", "v1"), ("1.0.0", "v2"),
                                         ("1.5.9", "v2")])
def test_supported_versions_pick_their_api(version: str, api: str) -> None:
    assert check_version(version, "http://src") == api


def test_0_3_is_sent_to_chroma_migrate_first() -> None:
    with pytest.raises(SourceRefused) as err:
        check_version("0.3.29", "http://src:8000")
    assert "Chroma 0.3.29" in str(err.value) and "first run chroma-migrate to 0.4" in str(err.value)
    assert SUPPORTED in str(err.value)


@pytest.mark.parametrize("version", ["0.6.3", "0.2.1", "nonsense"])
def test_other_versions_are_refused_naming_both(version: str) -> None:
    with pytest.raises(SourceRefused) as err:
        check_version(version, "http://src:8000")
    assert version in str(err.value) and SUPPORTED in str(err.value)


def test_a_0_3_persist_directory_and_an_empty_one_are_refused(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "chroma-collections.parquet").write_bytes(b"PAR1")
    with pytest.raises(SourceRefused, match="0.3.x .*first run chroma-migrate to 0.4"):
        persist_version(tmp_path / "old")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceRefused, match="holds no Chroma persist directory"):
        persist_version(tmp_path / "empty")
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == []      # nothing created there


def test_hnsw_space_in_metadata_wins_over_the_configuration() -> None:
    legacy_config = {"hnsw_configuration": {"space": "l2"}}                  # what 0.5.23 answers
    assert distance_space({"hnsw:space": "cosine"}, legacy_config) == "cosine"
    assert distance_space({}, {"hnsw": {"space": "ip"}}) == "ip"
    assert distance_space({}, legacy_config) == "l2"
