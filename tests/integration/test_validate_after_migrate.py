"""chroma_migrate then chroma_validate, both through ansible-playbook, on the lab's legacy
dataset (scaled): the real migration's output passes, its rejects are quarantined, not lost."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab import dataset
from migrate_play import base_args, run_migrate
from module_play import run_module
from tests.lab_vars import group_var

pytestmark = pytest.mark.timeout(600)


def test_real_migration_validates_and_damage_is_caught(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    dataset.load(source.url, "legacy", 0.1, client=source.client())
    routing = group_var("routing.yml", "chroma_routing")
    schema = group_var("schema_profile.yml", "chroma_schema_profile")
    rejects = tmp_path / "rejects.jsonl"
    rc, res, out = run_migrate(tmp_path, base_args(source.url, target.url, tmp_path / "ck", routing=routing,
                                                   schema=schema, rejects_path=str(rejects), run_id="v"))
    assert rc == 0, out
    rejected = sum(1 for _ in rejects.open())
    assert rejected > 0

    args = {"source": {"url": source.url}, "target": {"url": target.url}, "routing": routing, "schema": schema,
            "rejects_path": str(rejects), "report_dir": str(tmp_path / "reports")}
    rc, val, out = run_module(tmp_path, "chroma_validate", args, name="v1")
    assert rc == 0, out
    assert val["overall_status"] == "PASSED", [(c["name"], c["status"], c["summary"]) for c in val["checks"]]
    assert val["records"]["quarantined_in_rejects"] == rejected and val["records"]["lost"] == 0
    assert val["semantic_divergence_percentage"] < 5.0 and val["changed"] is False
    md = Path(val["report_md"]).read_text()
    assert f"{rejected} quarantined in the rejects file" in md

    # lose 4% of one collection: FAILED, and the loss figure counts exactly those records
    corpus = target.client().get_collection("sergio_corpus")
    ids = corpus.get(include=[])["ids"]
    victims = ids[: max(1, len(ids) * 4 // 100)]
    corpus.delete(ids=victims)
    rc, val, out = run_module(tmp_path, "chroma_validate", args, name="v2")
    assert rc == 0, out
    source_total = sum(c.count() for c in source.client().list_collections())
    assert val["overall_status"] == "FAILED" and val["rollback_triggered"]
    assert val["data_loss_percentage"] == pytest.approx(100 * len(victims) / source_total, abs=1e-3)
    saved = json.loads(Path(val["report_json"]).read_text())
    lost = next(c for c in saved["checks"] if c["name"] == "count_verification")
    assert lost["offending_counts"]["lost"] == len(victims)
