"""Running chroma_migrate through a real ansible-playbook (tiny playbook in tmp_path)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

PLAY = """\
- name: Run chroma_migrate
  hosts: localhost
  gather_facts: false
  vars_files: [args.yml]
  tasks:
    - name: Migrate, keeping the result even when it fails
      block:
        - name: Migrate
          chroma_migrate:
{keys}
          register: migrate_result
      always:
        - name: Save the result for the test
          ansible.builtin.copy:
            content: "{{{{ migrate_result | to_json }}}}"
            dest: "{out}"
            mode: "0600"
          check_mode: false
"""


class _Dumper(yaml.SafeDumper):
    """Writes strings holding Jinja2 as !unsafe, as group_vars do."""


def _str(dumper: yaml.SafeDumper, value: str) -> Any:
    if "{{" in value or "{%" in value:
        return dumper.represent_scalar("!unsafe", value)
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PATH=f"{VENV_BIN}:{env.get('PATH', '')}",
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_LIBRARY=str(REPO / "library"),
        ANSIBLE_MODULE_UTILS=str(REPO / "module_utils"),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
    )
    return env


BARE_PLAY = """\
- name: Run chroma_migrate
  hosts: localhost
  gather_facts: false
  vars_files: [args.yml]
  tasks:
    - name: Migrate
      chroma_migrate:
{keys}
"""


def write_play(workdir: Path, args: dict[str, Any], name: str = "run", save_result: bool = True) -> tuple[Path, Path]:
    """A playbook + vars file in ``workdir/name``; returns (playbook, result file).

    ``save_result=False``: only the module task (benchmarks read the result from the checkpoint)."""
    d = workdir / name
    d.mkdir(parents=True, exist_ok=True)
    out = d / "result.json"
    (d / "args.yml").write_text(yaml.dump({"migrate_args": args}, Dumper=_Dumper, allow_unicode=True))
    play = d / "play.yml"
    indent = " " * (12 if save_result else 8)
    keys = "\n".join(f"{indent}{k}: \"{{{{ migrate_args[{k!r}] }}}}\"" for k in args)
    play.write_text(PLAY.format(out=out, keys=keys) if save_result else BARE_PLAY.format(keys=keys))
    return play, out


def play_command(play: Path, check: bool = False) -> list[str]:
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play)]
    return cmd + (["--check"] if check else [])


def run_migrate(workdir: Path, args: dict[str, Any], check: bool = False, name: str = "run",
                timeout: float = 600) -> tuple[int, dict[str, Any], str]:
    """Run the playbook; (return code, the module's registered result, output)."""
    play, out = write_play(workdir, args, name)
    if out.exists():
        out.unlink()
    proc = subprocess.run(play_command(play, check), env=ansible_env(), cwd=str(REPO), capture_output=True,
                          text=True, timeout=timeout)
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    return proc.returncode, result, proc.stdout + proc.stderr


def base_args(source_url: str, target_url: str, checkpoint_dir: Path, **extra: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"source": {"url": source_url}, "target": {"url": target_url},
                            "checkpoint_dir": str(checkpoint_dir)}
    args.update(extra)
    return args


def snapshot(client: Any, names: Optional[list[str]] = None) -> dict[str, Any]:
    """Everything a server holds, for exact comparisons (embeddings as float32 bytes)."""
    import numpy as np

    out: dict[str, Any] = {}
    for col in client.list_collections():
        if names is not None and col.name not in names:
            continue
        c = client.get_collection(col.name)
        got = c.get(include=["embeddings", "documents", "metadatas"])
        rows = {}
        for i, rid in enumerate(got["ids"]):
            emb = got["embeddings"][i]
            rows[rid] = (got["documents"][i], got["metadatas"][i],
                         None if emb is None else np.asarray(emb, dtype=np.float32).tobytes())
        hnsw = dict((c.configuration_json or {}).get("hnsw") or {})
        out[col.name] = {"metadata": c.metadata, "hnsw": hnsw, "rows": rows}
    return out
