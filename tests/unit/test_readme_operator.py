"""README: keeping the inventory outside the repository, and what the dry run proves.

The README's words are checked against the files that make them true, so the
two cannot drift apart: the settings link, the precedence, the plain-copy
settings, the dry run's "would" messages and its one file.
"""
from __future__ import annotations

import configparser
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"### {title}\n")
    end = README.find("\n#", start + 4)
    return README[start:end if end > 0 else None]


def test_readme_says_how_to_keep_the_inventory_elsewhere_and_what_the_dry_run_proves() -> None:
    elsewhere = _section("Keeping the inventory outside the repository")
    assert "ansible-playbook -i ~/ops-inventory/chroma/production.yml migrate.yml --check --diff" in elsewhere
    # the settings load beside the playbooks, for any inventory, and only from there
    assert "`playbooks/group_vars` links to them" in elsewhere
    assert (REPO / "playbooks" / "group_vars").resolve() == (REPO / "group_vars").resolve()
    assert not (REPO / "inventory" / "group_vars").exists()
    # ... as the lowest group layer, so the inventory's own settings win
    assert "whatever\nyour inventory sets" in elsewhere
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "ansible.cfg")
    order = [s.strip() for s in cfg["defaults"]["precedence"].split(",")]
    assert order.index("all_plugins_play") < order.index("all_inventory") < order.index("all_plugins_inventory")
    # a plain copy is asked for with exactly the settings the preflight requires
    plain = yaml.safe_load(re.search(r"```yaml\n(.*?)```", elsewhere, re.S).group(1))
    assert plain == {"all": {"vars": {"chroma_routing": [], "chroma_schema_profile": None}}}
    required = yaml.safe_load((REPO / "roles/chroma_preflight/defaults/main.yml").read_text())
    assert set(plain["all"]["vars"]) | {"chroma_expected_counts"} == set(required["chroma_preflight_required_settings"])
    assert "SETTINGS NOT SET:" in (REPO / "roles/chroma_preflight/tasks/settings.yml").read_text()

    dry = _section("What the dry run proves, and what it does not")
    assert "It proves" in dry and "It does not prove" in dry
    roles = "\n".join(p.read_text() for p in (REPO / "roles").glob("*/tasks/*.yml"))
    quoted = re.findall(r'"(would [a-z]+)', dry)
    assert quoted == ["would refuse", "would snapshot", "would write", "would set"], quoted
    for words in ["would refuse writes at", "would snapshot", "would write", "would set {%"]:
        assert words in " ".join(roles.split()), words
    assert "<chroma_runs_dir>/throughput.json" in dry
    assert '{{ chroma_run_runs_dir }}/throughput.json' in (REPO / "roles/chroma_run/defaults/main.yml").read_text()
