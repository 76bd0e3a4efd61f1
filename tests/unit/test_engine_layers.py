"""The engine's layers: imports flow one way (validation -> migrate, snapshot -> run -> io).

Every file under module_utils/chroma_runbook/ is parsed with ast; each import of another
engine module (relative, or spelled ``chroma_runbook...``/``ansible.module_utils.chroma_runbook...``)
must stay inside its own layer or go to a layer below it. migrate and snapshot are siblings:
neither imports the other.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, Optional

ENGINE = Path(__file__).resolve().parents[2] / "module_utils" / "chroma_runbook"

# layer -> the layers it may import (besides itself)
ALLOWED: dict[str, frozenset[str]] = {
    "io": frozenset(),
    "run": frozenset({"io"}),
    "migrate": frozenset({"run", "io"}),
    "snapshot": frozenset({"run", "io"}),
    "validation": frozenset({"migrate", "snapshot", "run", "io"}),
}
PREFIXES = ("ansible.module_utils.chroma_runbook", "chroma_runbook")


def _module_name(root: Path, path: Path) -> list[str]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _absolute(dotted: str) -> Optional[list[str]]:
    for prefix in PREFIXES:
        if dotted == prefix or dotted.startswith(prefix + "."):
            return dotted[len(prefix):].lstrip(".").split(".") if dotted != prefix else []
    return None


def _relative(root: Path, path: Path, node: ast.ImportFrom) -> list[str]:
    package = list(path.relative_to(root).parent.parts)
    if node.level > 1:
        package = package[: len(package) - (node.level - 1)]
    return package + (node.module.split(".") if node.module else [])


def engine_imports(root: Path, path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line, target inside the engine as parts) of every engine import in one file."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            target = _relative(root, path, node) if node.level else _absolute(node.module or "")
            if target is None:
                continue
            # ``from .. import x`` names its modules in the aliases
            for t in ([[alias.name] for alias in node.names] if not target else [target]):
                yield node.lineno, t
        elif isinstance(node, ast.Import):
            for alias in node.names:
                target = _absolute(alias.name)
                if target is not None:
                    yield node.lineno, target


def layer_violations(root: Path = ENGINE) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        own = _module_name(root, path)
        if own == []:
            continue  # the engine's own __init__.py
        layer = own[0]
        if layer not in ALLOWED:
            problems.append(f"{path.relative_to(root)}: outside every layer ({', '.join(ALLOWED)})")
            continue
        for line, target in engine_imports(root, path):
            if target[0] not in ALLOWED:
                problems.append(f"{path.relative_to(root)}:{line} imports {'.'.join(target)}, which is in no layer")
            elif target[0] != layer and target[0] not in ALLOWED[layer]:
                problems.append(f"{path.relative_to(root)}:{line} ({layer}) imports {'.'.join(target)} "
                                f"({target[0]}): against the layer order")
    return problems


def test_every_engine_module_sits_in_a_layer_package() -> None:
    for layer in ALLOWED:
        assert (ENGINE / layer / "__init__.py").is_file(), f"{layer}/ needs an __init__.py for AnsiballZ"
    loose = [p.name for p in ENGINE.glob("*.py") if p.name != "__init__.py"]
    assert loose == [], f"engine modules outside the layers: {loose}"


def test_imports_flow_one_way() -> None:
    assert layer_violations() == []


def test_the_check_sees_an_import_against_the_order(tmp_path: Path) -> None:
    for layer in ALLOWED:
        (tmp_path / layer).mkdir()
        (tmp_path / layer / "__init__.py").write_text("")
    (tmp_path / "io" / "bad.py").write_text("from ..run import run_state\nfrom ..run.names import staging_name\n")
    (tmp_path / "migrate" / "bad.py").write_text("from ..snapshot.manifest import load_manifest\n")
    (tmp_path / "run" / "bad.py").write_text("from chroma_runbook.validation import runner\n")
    (tmp_path / "snapshot" / "fine.py").write_text("from .. import io\nfrom ..run import names\nfrom . import manifest\n")
    (tmp_path / "run" / "fine.py").write_text("from ..io.clock import utc_stamp\nfrom .names import staging_name\n")
    problems = layer_violations(tmp_path)
    assert len(problems) == 4, problems
    assert not any("fine.py" in p for p in problems), problems
