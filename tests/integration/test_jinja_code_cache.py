"""Compiled templates shared by ansible's forked workers (plugins/controller/jinja_code_cache.py).

Every check runs in a fresh interpreter (the cache patches ansible's Jinja environment for the whole
process) or through real ansible-playbook. The renderings with the cache - when it compiles and keeps
the code, and when a later process loads it - must equal those without it, for the texts where the
compiled code differs by more than the text (backslash escaping, ``#jinja2:`` overrides, a template
against an expression), and a template that does not compile fails the same way each time.
"""
from __future__ import annotations

import marshal
import os
import subprocess
import sys
import types
from pathlib import Path

from module_play import fresh_python

REPO = Path(__file__).resolve().parents[2]
CONTROLLER = REPO / "plugins" / "controller"

RENDER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader()
from ansible.template import Templar, trust_as_template
import jinja_code_cache
installed = jinja_code_cache.install(sys.argv[2]) if sys.argv[2] != "none" else False
templar = Templar(loader=None, variables={"a": 1, "word": "a\\nb", "items": [3, 1, 2]})
CASES = [
    ("template", "{{ a + 1 }} {{ items | sort | join(',') }}", {}),
    ("template", "{{ '\\t' | length }}", {"escape_backslashes": True}),
    ("template", "{{ '\\t' | length }}", {"escape_backslashes": False}),
    ("template", "#jinja2:variable_start_string:'[%', variable_end_string:'%]'\n[% a %] {{ a }}", {}),
    ("template", "[% a %] {{ a }}", {}),
    ("template", "{{ a + }}", {}),
    ("template", "{{ nowhere }}", {}),
    ("conditional", "a == 1 and items | length == 3", {}),
    ("conditional", "'\\t' | length == 1", {}),
    ("expression", "a + 1", {}),
    ("expression", "{{ a + 1 }}", {}),
]
out = []
for kind, text, options in CASES:
    try:
        if kind == "template":
            value = templar.template(trust_as_template(text), **options)
        elif kind == "conditional":
            value = templar.evaluate_conditional(trust_as_template(text))
        else:
            value = templar.evaluate_expression(trust_as_template(text))
        out.append(["ok", repr(value)])
    except Exception as exc:
        out.append([type(exc).__name__, str(exc).splitlines()[0]])
print(json.dumps({"installed": installed, "out": out, "stats": jinja_code_cache.stats}))
"""


def test_renderings_with_the_cache_compiling_and_loading_equal_those_without(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    plain = fresh_python(RENDER, str(CONTROLLER), "none")
    cold = fresh_python(RENDER, str(CONTROLLER), str(cache))
    kept = sorted(os.listdir(cache))
    warm = fresh_python(RENDER, str(CONTROLLER), str(cache))
    assert not plain["installed"] and cold["installed"] and warm["installed"]
    assert cold["out"] == plain["out"] and warm["out"] == plain["out"], (plain["out"], cold["out"], warm["out"])
    # the texts whose code differs by more than the text came out different, as without the cache
    assert plain["out"][1] == ["ok", "2"] and plain["out"][2] == ["ok", "1"], plain["out"]
    assert plain["out"][3] == ["ok", "'1 {{ a }}'"] and plain["out"][4] == ["ok", "'[% a %] 1'"], plain["out"]
    assert plain["out"][5][0] != "ok" and plain["out"][6][0] != "ok", plain["out"]
    # the second process compiled nothing that the first had kept, and added no file
    assert cold["stats"]["compiled"] > 0 and warm["stats"]["compiled"] == 0, (cold["stats"], warm["stats"])
    assert warm["stats"]["loaded"] >= cold["stats"]["compiled"], (cold["stats"], warm["stats"])
    assert sorted(os.listdir(cache)) == kept and (os.stat(cache).st_mode & 0o077) == 0


def test_the_cache_is_refused_in_a_directory_others_can_write_or_when_turned_off(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)
    answer = fresh_python(RENDER, str(CONTROLLER), str(shared))
    assert not answer["installed"] and answer["stats"] == {"loaded": 0, "compiled": 0} and os.listdir(shared) == []
    turned_off = """
import json, sys
sys.path.insert(0, sys.argv[1])
import jinja_code_cache
print(json.dumps({"directory": jinja_code_cache.default_directory(), "installed": jinja_code_cache.install()}))
"""
    answer = fresh_python(turned_off, str(CONTROLLER), env={"CHROMA_RUNBOOK_JINJA_CACHE": "off"})
    assert answer == {"directory": None, "installed": False}


PLAY = """\
- name: One template text, in a task of its own
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Load the project's plugins (ansible's main process installs the cache)
      chroma_run: {{action: open, runs_dir: "{runs}"}}
      check_mode: true
    - name: Say the word
      ansible.builtin.debug:
        msg: "{{{{ '{word}' }}}}"
"""


def _say(tmp_path: Path, word: str, cache: Path, plugins: bool = True) -> str:
    """ansible-playbook's debug line for PLAY with ``word``."""
    play = tmp_path / f"say_{word}.yml"
    play.write_text(PLAY.format(runs=tmp_path / "runs", word=word))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), CHROMA_RUNBOOK_JINJA_CACHE=str(cache))
    if not plugins:
        (tmp_path / "no_plugins").mkdir(exist_ok=True)
        env["ANSIBLE_ACTION_PLUGINS"] = str(tmp_path / "no_plugins")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), str(play)], env=env, cwd=str(REPO),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return [line for line in proc.stdout.splitlines() if '"msg":' in line or "msg:" in line][-1]


def _holds(code: types.CodeType, constant: str) -> bool:
    return any(c == constant or (isinstance(c, types.CodeType) and _holds(c, constant)) for c in code.co_consts)


def _file_holding(cache: Path, constant: str) -> Path:
    found = [p for p in cache.iterdir() if _holds(marshal.loads(p.read_bytes()), constant)]
    assert len(found) == 1, (constant, found)
    return found[0]


def test_forked_workers_of_ansible_playbook_run_the_code_the_cache_holds(tmp_path: Path) -> None:
    """The proof that a task's worker takes the kept code instead of compiling: the file kept for one
    text is overwritten with the code of another, and the next run says the other word. Without the
    project's plugins (no cache installed) the same run says its own word."""
    cache = tmp_path / "cache"
    assert "fresh" in _say(tmp_path, "fresh", cache)
    assert "cached" in _say(tmp_path, "cached", cache)
    _file_holding(cache, "fresh").write_bytes(_file_holding(cache, "cached").read_bytes())
    assert "cached" in _say(tmp_path, "fresh", cache)
    assert "fresh" in _say(tmp_path, "fresh", cache, plugins=False)
