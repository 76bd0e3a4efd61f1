"""chroma_run on the controller runs in ansible's own process (plugins/action/chroma_run.py).

The same playbook runs twice through real ansible-playbook: with the project's action plugin, and
with it hidden (ANSIBLE_ACTION_PLUGINS pointing at an empty directory), so the module is shipped and
run as a separate process the usual way. Both must give the same results - success, changes, check
mode, and the failures with their messages - and only the second may start AnsiballZ_chroma_run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from module_play import fresh_python

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

PLAY = """\
- name: chroma_run, every kind of call
  hosts: localhost
  gather_facts: false
  vars:
    runs: "{runs}"
  tasks:
    - name: Open a run in check mode (writes nothing)
      chroma_run: {{action: open, runs_dir: "{{{{ runs }}}}"}}
      check_mode: true
      register: dry
    - name: Open a run
      chroma_run: {{action: open, runs_dir: "{{{{ runs }}}}"}}
      register: opened
    - name: Start a step
      chroma_run: {{action: step_start, runs_dir: "{{{{ runs }}}}", run_id: "{{{{ opened.run_id }}}}", step: freeze}}
      register: started
    - name: End it with a result, stamping a data key
      chroma_run:
        action: step_end
        runs_dir: "{{{{ runs }}}}"
        run_id: "{{{{ opened.run_id }}}}"
        step: freeze
        result: {{proof: canaries}}
        data: {{freeze: {{method: proxy}}}}
        stamp: [freeze.frozen_at]
      register: ended
    - name: End it again (nothing changes)
      chroma_run:
        action: step_end
        runs_dir: "{{{{ runs }}}}"
        run_id: "{{{{ opened.run_id }}}}"
        step: freeze
        result: {{proof: canaries}}
        data: {{freeze: {{method: proxy}}}}
      register: again
    - name: A step without its run id (the argument spec refuses it)
      chroma_run: {{action: step_start, runs_dir: "{{{{ runs }}}}", step: x}}
      ignore_errors: true
      register: no_run_id
    - name: An unknown run
      chroma_run: {{action: find, runs_dir: "{{{{ runs }}}}", run_id: 20200101T000000Z-abcd}}
      ignore_errors: true
      register: unknown
    - name: Save what each call returned
      ansible.builtin.copy:
        content: "{{{{ {{'dry': dry, 'opened': opened, 'started': started, 'ended': ended, 'again': again,
                       'no_run_id': no_run_id, 'unknown': unknown}} | to_json }}}}"
        dest: "{out}"
        mode: "0600"
"""


def _play(workdir: Path, plugin: bool) -> tuple[dict[str, Any], str, dict[str, Any]]:
    workdir.mkdir(parents=True)
    runs, out = workdir / "runs", workdir / "results.json"
    play = workdir / "play.yml"
    play.write_text(PLAY.format(runs=runs, out=out))
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    if not plugin:
        (workdir / "no_actions").mkdir()
        env["ANSIBLE_ACTION_PLUGINS"] = str(workdir / "no_actions")
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-vvv", str(play)],
                          env=env, capture_output=True, text=True, timeout=300, cwd=str(REPO))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    results = json.loads(out.read_text())
    run_id = results["opened"]["run_id"]
    state = json.loads((runs / run_id / "state.json").read_text())
    return results, proc.stdout, state


def _shape(results: dict[str, Any]) -> dict[str, Any]:
    """What must be the same either way (run ids and times differ)."""
    return {name: {"changed": r.get("changed"), "failed": r.get("failed", False),
                   "msg": str(r.get("msg", "")).replace("20200101T000000Z-abcd", "ID").split(" in /")[0],
                   "keys": sorted(k for k in r if not k.startswith("_") and k != "invocation")}
            for name, r in results.items()}


def test_in_process_results_equal_the_module_process_and_no_module_process_starts(tmp_path: Path) -> None:
    here, here_log, here_state = _play(tmp_path / "plugin", plugin=True)
    shipped, shipped_log, shipped_state = _play(tmp_path / "module", plugin=False)

    assert "AnsiballZ_chroma_run" in shipped_log          # the usual way: a module process per call
    assert "AnsiballZ_chroma_run" not in here_log         # the plugin: none
    assert _shape(here) == _shape(shipped), (_shape(here), _shape(shipped))

    assert here["dry"]["changed"] and not (tmp_path / "plugin" / "runs" / here["dry"]["run_id"]).exists()
    assert here["ended"]["changed"] and not here["again"]["changed"]
    assert "run_id" in here["no_run_id"]["msg"] and here["unknown"]["failed"]
    for state in (here_state, shipped_state):
        assert state["steps"]["freeze"]["outcome"] == "ok" and state["steps"]["freeze"]["result"] == {"proof": "canaries"}
        assert state["data"]["freeze"]["method"] == "proxy" and state["data"]["freeze"]["frozen_at"].endswith("Z")


HEALTH_PLAY = """\
- name: chroma_app_health against a port nothing listens on
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Wait for an app that is not there
      chroma_app_health: {{url: "http://127.0.0.1:9/health", timeout_s: 0.5, interval_s: 0.1}}
      ignore_errors: true
      register: gone
    - name: The same with an environment for the module's process (shipped as a module process)
      chroma_app_health: {{url: "http://127.0.0.1:9/health", timeout_s: 0.5, interval_s: 0.1}}
      environment: {{CHROMA_RUNBOOK_PROBE: "1"}}
      ignore_errors: true
      register: shipped
    - name: The same as another user (become; shipped as a module process)
      chroma_app_health: {{url: "http://127.0.0.1:9/health", timeout_s: 0.5, interval_s: 0.1}}
      become: true
      become_method: ansible.builtin.su
      become_user: root
      ignore_errors: true
      register: shipped_become
    - name: Save the result
      ansible.builtin.copy: {{content: "{{{{ gone | to_json }}}}", dest: "{out}", mode: "0600"}}
"""


def test_the_other_controller_modules_take_the_same_plugin(tmp_path: Path) -> None:
    out = tmp_path / "gone.json"
    play = tmp_path / "health.yml"
    play.write_text(HEALTH_PLAY.format(out=out))
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-vvv", str(play)],
                          env=env, capture_output=True, text=True, timeout=300, cwd=str(REPO))
    assert proc.returncode == 0, proc.stdout[-3000:]
    shipped = [line for line in proc.stdout.splitlines() if " PUT " in line and "AnsiballZ_chroma_app_health.py" in line]
    assert len(shipped) == 2, shipped  # only the tasks with an environment and with become
    gone = json.loads(out.read_text())
    assert gone["failed"] and "http://127.0.0.1:9/health was not healthy" in gone["msg"], gone
    assert gone["status"] == -1 and gone["attempts"] >= 1, gone


ENGINE_PLAY = """\
- name: chroma_info (an engine module) on the controller
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Fingerprint a persist directory (the module reads a private copy, removed at its end)
      chroma_info: {{server: {{path: "{persist}"}}, fingerprint: true}}
      register: here
    - name: The same as a background job (async is a module process of its own)
      chroma_info: {{server: {{path: "{persist}"}}, fingerprint: true}}
      async: 120
      poll: 1
      register: background
    - name: Save the results
      ansible.builtin.copy: {{content: "{{{{ {{'here': here, 'background': background}} | to_json }}}}", dest: "{out}",
                             mode: "0600"}}
"""


def _persist_dir(path: Path) -> None:
    """A small chromadb 1.x persist directory: one collection of three records."""
    code = ("import chromadb, sys\n"
            "c = chromadb.PersistentClient(path=sys.argv[1]).create_collection('notes')\n"
            "c.add(ids=['a', 'b', 'c'], embeddings=[[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], documents=['x', 'y', 'z'])\n")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=120)


def test_engine_modules_run_here_with_chromadb_imported_once_and_clean_up_at_their_end(tmp_path: Path) -> None:
    persist, out, scratch = tmp_path / "persist", tmp_path / "engine.json", tmp_path / "tmp"
    _persist_dir(persist)
    scratch.mkdir()
    play = tmp_path / "engine.yml"
    play.write_text(ENGINE_PLAY.format(persist=persist, out=out))
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_PYTHON_INTERPRETER=sys.executable, TMPDIR=str(scratch))
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-vvv", str(play)],
                          env=env, capture_output=True, text=True, timeout=300, cwd=str(REPO))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    results = json.loads(out.read_text())
    here, background = results["here"], results["background"]
    # the foreground call ran in ansible's process; the async one as a module process, as before
    shipped = [line for line in proc.stdout.splitlines() if " PUT " in line and "AnsiballZ_chroma_info.py" in line]
    assert len(shipped) == 1 and "async_wrapper" in proc.stdout, shipped
    assert here["fingerprint"] == background["fingerprint"] and here["fingerprint"]["collections"]["notes"]["count"] == 3, results
    # the private copy the module registered for removal at exit is gone (a worker exits without atexit)
    assert not list(scratch.glob("chroma-runbook-source-*")), list(scratch.iterdir())


def test_an_engine_module_runs_here_only_on_the_hosts_own_python() -> None:
    plugin = _load_plugin()
    here = sys.executable
    assert plugin.same_environment(here, here)
    assert plugin.same_environment(str(Path(here).parent / "python3"), here)  # the same bin directory
    assert not plugin.same_environment("/usr/bin/python3", str(VENV_BIN / "python"))
    assert not plugin.same_environment(None, here) and not plugin.same_environment("", here)


def _load_plugin() -> Any:
    import importlib.util
    spec = importlib.util.spec_from_file_location("chroma_run_action", REPO / "plugins" / "action" / "chroma_run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WARM_THEN_CONNECT = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("chroma_run_action", sys.argv[1])
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)
plugin.warm_imports("chroma_info")
sys.path.insert(0, sys.argv[2])
from chroma_runbook.io.connection import connect
before = set(sys.modules)
client = connect({"url": sys.argv[3]})
print(json.dumps({"heartbeat": client.heartbeat(), "new": sorted(set(sys.modules) - before)}))
"""


def test_a_client_made_in_a_warmed_worker_imports_nothing_more_of_chromadb_or_its_http(chroma_factory) -> None:
    """What ansible's main process imports before the fork covers the first client a module makes."""
    server = chroma_factory("warm")
    answer = fresh_python(WARM_THEN_CONNECT, str(REPO / "plugins" / "action" / "chroma_run.py"), str(REPO / "module_utils"),
                           server.connection["url"])
    heavy = [m for m in answer["new"] if m.split(".")[0] in ("chromadb", "httpx", "httpcore", "anyio", "posthog")]
    assert answer["heartbeat"] > 0 and heavy == [], heavy


WARM_THEN_TEMPLATE = """
import importlib.util, json, sys
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader()  # as ansible-playbook does before it loads any plugin
from ansible._internal._templating._jinja_bits import AnsibleEnvironment
from ansible.template import Templar, trust_as_template
spec = importlib.util.spec_from_file_location("chroma_run_action", sys.argv[1])
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)  # ansible's main process loading the action plugin, before any fork
lexers = len(AnsibleEnvironment._lexer_cache)
before = set(sys.modules)
templar = Templar(loader=None, variables={"runs": "/srv/chroma/runs/latest"})
value = templar.template(trust_as_template("{{ runs | dirname }} {{ runs is abs }} {{ runs is string }} {{ runs | regex_replace('/+$', '') }}"))
print(json.dumps({"value": value, "new": sorted(set(sys.modules) - before), "lexers_warmed": lexers,
                  "lexers_after": len(AnsibleEnvironment._lexer_cache)}))
"""


def test_loading_the_plugin_readies_the_templating_every_forked_worker_would_load_again() -> None:
    """After the plugin loads (in ansible's main process), templating a task's arguments with filters and
    tests - what each forked worker does first - loads no filter or test plugin and builds no lexer."""
    answer = fresh_python(WARM_THEN_TEMPLATE, str(REPO / "plugins" / "action" / "chroma_run.py"))
    assert answer["value"] == "/srv/chroma/runs True True /srv/chroma/runs/latest", answer
    plugins_loaded = [m for m in answer["new"] if ".plugins.filter" in m or ".plugins.test" in m]
    assert plugins_loaded == [], plugins_loaded
    assert answer["lexers_warmed"] >= 1 and answer["lexers_after"] == answer["lexers_warmed"], answer


LOAD_PLUGIN_THEN_RUN = """
import json, sys
from ansible.plugins.loader import action_loader, init_plugin_loader
init_plugin_loader()
plugin = sys.modules[action_loader.get("chroma_app_health", class_only=True).__module__]  # ansible's main process
loaded = sorted(plugin._LOADED)
before = set(sys.modules)
codes = [plugin.module_code(name) for name in ("chroma_run", "chroma_app_health")]  # what a forked worker runs
print(json.dumps({"loaded": loaded, "new": sorted(set(sys.modules) - before),
                  "same": [code is plugin._LOADED[name] for code, name in zip(codes, ("chroma_run", "chroma_app_health"))]}))
"""


def test_a_plugin_loaded_in_the_main_process_brings_its_module_code_for_every_worker() -> None:
    """Loading chroma_app_health's plugin (as ansible's main process does before forking a task's worker) loads
    library/chroma_app_health.py and chroma_run's with their module_utils; a worker then imports nothing more."""
    answer = fresh_python(LOAD_PLUGIN_THEN_RUN)
    assert {"chroma_run", "chroma_app_health"} <= set(answer["loaded"]), answer
    assert answer["new"] == [] and answer["same"] == [True, True], answer
