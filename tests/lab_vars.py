"""Reading the repo's group_vars in tests (they use Ansible's !unsafe tag for templates)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``!unsafe "..."`` as the plain string Ansible passes on."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def group_var(file: str, name: str) -> Any:
    """``group_var("routing.yml", "chroma_routing")`` from group_vars/all/."""
    return yaml.load((REPO / "group_vars" / "all" / file).read_text(), Loader=_Loader)[name]
