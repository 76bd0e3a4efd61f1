"""Action plugin for chroma_run (and the other modules the controller runs): run the module in the
controller's own process when it runs here.

chroma_run only reads and writes the run's files (state.json, events, summary) on the machine it
runs on, and every role delegates it to the controller. Started the usual way, each call pays for a
new Python interpreter and its imports: about 0.25 s, and a dozen of these calls fall inside the
write freeze. On a local connection this plugin runs the same module code (library/chroma_run.py,
the same argument spec, check mode and messages) in the worker process instead and returns the same
result. On any other connection, for a task with ``async`` (a background job is a process of its
own), with ``become`` (another user) or with ``environment`` (variables for the module's process),
the module is sent and run as usual.

chroma_app_health, chroma_app_probe and chroma_freeze_proof (plain HTTP from the controller, one call
each inside the window) take this plugin as it is; chroma_job (the migration's progress poll, which
would otherwise start an interpreter every second beside the job it watches) adds the connection's
async_dir to it. The engine's modules (chroma_migrate,
chroma_snapshot, chroma_validate, chroma_info, ...) take ``EngineAction``: they need chromadb and
numpy, so they run here only when the host's Python is this one (the same bin directory, so the same
libraries), and their plugin files call ``warm_imports`` when ansible loads them. Ansible loads an
action plugin's class in its main process before it forks the worker of each task, so chromadb is
imported once per playbook, not once per task: about 0.9 s a call, four calls under the freeze.

The first of these plugins to load also readies ansible's templating in the main process
(``warm_templating``): the Jinja filter and test plugins and the template lexer are otherwise built
again in every forked worker, about 10 ms of each small task's 45-55 ms on a 2-core box. It also
installs the compiled-template cache (plugins/controller/jinja_code_cache.py):
a worker loads the code of a template any worker (or an earlier run) compiled, instead of compiling
it again (~17 ms of a small task; ``CHROMA_RUNBOOK_JINJA_CACHE=off`` turns it off). Each plugin
file also loads its module's code there (``warm_module``, ``warm_imports``), so a worker runs it
without executing library/<name>.py and importing its module_utils again (~40 ms for chroma_run).

Whatever the module registers with ``atexit`` (a temporary directory to remove) runs when the module
ends, as it would when its process exits; a worker process ends without running exit handlers.
"""
from __future__ import annotations

import atexit
import contextlib
import importlib
import importlib.util
import io
import json
import os
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Callable, Optional

import ansible.module_utils
import ansible.module_utils.basic as basic
from ansible import constants as C
from ansible.plugins.action import ActionBase
from ansible.plugins.loader import connection_loader, filter_loader, module_loader, test_loader
from ansible.template import Templar, trust_as_template
from ansible.utils.display import Display

PROFILE = "legacy"
# chromadb's HTTP client, its telemetry class and httpx's transport are imported when the first
# client is made (~0.1-0.4 s, in every worker): imported here, before the fork, with the rest.
ENGINE_LIBRARIES = ("numpy", "chromadb", "chromadb.api.fastapi", "chromadb.telemetry.product.posthog", "httpcore", "h11",
                    "anyio", "certifi")
display = Display()


def join_module_utils() -> None:
    """The project's module_utils become importable here as ansible.module_utils.*."""
    for path in C.DEFAULT_MODULE_UTILS_PATH or []:
        if path not in ansible.module_utils.__path__:
            ansible.module_utils.__path__.append(path)


def _exec_file(module_name: str, path: str) -> ModuleType:
    """The Python file at ``path``, executed as a module named ``module_name``."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    code = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(code)
    return code


def _module_code(name: str) -> ModuleType:
    """library/<name>.py, importable here: the project's module_utils join ansible.module_utils."""
    join_module_utils()
    found = module_loader.find_plugin_with_context(name)
    if not found.resolved or not found.plugin_resolved_path:
        raise RuntimeError(f"module {name} not found in {C.DEFAULT_MODULE_PATH}")
    return _exec_file(f"chroma_runbook_module_{name}", found.plugin_resolved_path)


_LOADED: dict[str, ModuleType] = {}


def module_code(name: str) -> ModuleType:
    """library/<name>.py as loaded once in this process. Loaded in ansible's main process (``warm_module``),
    every worker forked later runs it without executing the file and importing its module_utils again
    (~40 ms for chroma_run's); each worker runs one task, so a module's run starts from the file's state."""
    code = _LOADED.get(name)
    if code is None:
        code = _LOADED[name] = _module_code(name)
    return code


def warm_module(name: str) -> None:
    """Load ``name``'s code here, before the fork (the plugin files call it when ansible loads them). Best effort."""
    try:
        module_code(name)
    except Exception as exc:  # noqa: BLE001 - an optimisation; the worker loads it and reports its own errors
        display.vvv(f"chroma_runbook: could not pre-load {name}: {type(exc).__name__}: {exc}")


def warm_imports(module: str) -> None:
    """Import the engine's libraries and ``module``'s code in this process, so that every worker
    forked from it later starts with them. Best effort: a library that is not here is skipped (the
    module then runs where it has them), and a failure only costs the time it would have saved."""
    try:
        for library in ENGINE_LIBRARIES:
            if importlib.util.find_spec(library) is not None:
                importlib.import_module(library)
        module_code(module)
    except Exception as exc:  # noqa: BLE001 - an optimisation; the module reports its own import errors
        display.vvv(f"chroma_runbook: could not pre-import {module}: {type(exc).__name__}: {exc}")


_CONTROLLER: dict[str, ModuleType] = {}


def controller_code(name: str) -> ModuleType:
    """plugins/controller/<name>.py (code for ansible's own processes, not shipped with any module), loaded once."""
    code = _CONTROLLER.get(name)
    if code is None:
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "controller", f"{name}.py")
        code = _CONTROLLER[name] = _exec_file(f"chroma_runbook_controller_{name}", path)
    return code


def warm_templating() -> None:
    """Load, in this process, what every task's worker otherwise loads for itself after the fork.

    A worker templates its task's arguments: the first filter it meets loads every Jinja filter and
    test plugin (~13 ms), the first template builds the lexer (~3 ms; ansible-core leaves a note to
    build it before forking), and the worker loads its connection plugin (~2 ms). Done here once,
    every worker forked later starts with them. Then the compiled-template cache is installed, so a
    worker does not compile again what another compiled. Best effort, like ``warm_imports``.
    """
    try:
        list(filter_loader.all())
        list(test_loader.all())
        Templar(loader=None, variables={"warm": 1}).template(trust_as_template("{{ warm is string }}"))
        for connection in ("local", "ssh"):
            connection_loader.get(connection, class_only=True)
        controller_code("jinja_code_cache").install()
    except Exception as exc:  # noqa: BLE001 - an optimisation; the tasks load what they need themselves
        display.vvv(f"chroma_runbook: could not ready the templating before the fork: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def _exit_handlers_run_at_end() -> Iterator[None]:
    """What the module registers with atexit runs when it ends (a worker process ends with os._exit)."""
    registered: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []

    def register(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
        registered.append((func, args, kwargs))
        return func

    original = atexit.register
    atexit.register = register  # type: ignore[assignment]
    try:
        yield
    finally:
        atexit.register = original  # type: ignore[assignment]
        for func, args, kwargs in reversed(registered):
            with contextlib.suppress(Exception):
                func(*args, **kwargs)


def _run_here(code: ModuleType, module_args: dict[str, Any]) -> str:
    """What the module prints (its JSON result) when it runs with ``module_args`` in this process."""
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": module_args}).encode("utf-8")  # noqa: SLF001
    basic._ANSIBLE_PROFILE = PROFILE  # noqa: SLF001
    out = io.StringIO()
    with contextlib.redirect_stdout(out), _exit_handlers_run_at_end():
        try:
            code.run_module()
        except SystemExit:  # exit_json and fail_json end with sys.exit, as in a module process
            pass
    return out.getvalue()


def same_environment(interpreter: Optional[str], here: str = sys.executable) -> bool:
    """True when ``interpreter`` is a Python of this process's environment (the same bin directory)."""
    if not interpreter:
        return False
    return os.path.dirname(os.path.abspath(interpreter)) == os.path.dirname(os.path.abspath(here))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_async = True  # a task with async is sent as a module process (a background job), as usual
    #: the module imports libraries beyond Python's and ansible's: run it here only on the host's own Python
    NEEDS_HOST_PYTHON = False

    def _host_python(self, task_vars: dict[str, Any]) -> Optional[str]:
        """The Python the module would run with on this host, when it is known without discovery."""
        configured = C.config.get_config_value("INTERPRETER_PYTHON", variables=task_vars)
        value = str(self._templar.template(configured) or "").strip()
        if not value or value.startswith("auto"):
            value = str(task_vars.get("ansible_facts", {}).get("discovered_interpreter_python", ""))
        return value or None

    def _runs_here(self, task_vars: dict[str, Any]) -> bool:
        """Local connection, no async, no become, no task ``environment`` (set for a module process), and
        for the engine's modules the host's own Python."""
        if getattr(self._connection, "transport", "") != "local" or self._task.async_val:
            return False
        if getattr(self._connection, "become", None) is not None:  # another user: only a module process can be it
            return False
        environment: dict[str, Any] = {}
        self._compute_environment_string(environment)  # the task's (and its block's) environment, templated
        if environment:
            return False
        return not self.NEEDS_HOST_PYTHON or same_environment(self._host_python(task_vars))

    def run(self, tmp: Optional[str] = None, task_vars: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        result.update(self._call(self._module_name(), dict(self._task.args), task_vars))
        return result

    def _module_name(self) -> str:
        return self._task.action.rsplit(".", 1)[-1]

    def _call(self, module: str, module_args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        """One run of ``module`` with ``module_args``: here, or as a module process (see the module docstring)."""
        if not self._runs_here(task_vars):
            wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
            answer = self._execute_module(module_name=module, module_args=module_args, task_vars=task_vars,
                                          wrap_async=wrap_async)
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)  # noqa: SLF001 - as ansible's normal action does
            return answer
        self._update_module_args(module, module_args, task_vars)
        module_args["_ansible_tmpdir"] = None
        try:
            output = _run_here(module_code(module), module_args)
        except Exception as exc:  # noqa: BLE001 - what a crashed module process would report, named
            return {"failed": True, "msg": f"{module} failed in the controller's process: {type(exc).__name__}: {exc}"}
        return self._parse_returned_data({"stdout": output}, PROFILE)


class EngineAction(ActionModule):
    """For the engine's modules (chromadb, numpy): in this process only on the host's own Python."""
    NEEDS_HOST_PYTHON = True


warm_templating()
warm_module("chroma_run")
