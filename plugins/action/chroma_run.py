"""Action plugin for chroma_run (and the other controller-side modules): run the module in the
controller's own process when it runs here.

chroma_run only reads and writes the run's files (state.json, events, summary) on the machine it
runs on, and every role delegates it to the controller. Started the usual way, each call pays for a
new Python interpreter and its imports: about 0.25 s, and a dozen of these calls fall inside the
write freeze. On a local connection this plugin runs the same module code (library/chroma_run.py,
the same argument spec, check mode and messages) in the worker process instead and returns the same
result. On any other connection the module is sent and run there as usual.

chroma_app_health, chroma_app_probe and chroma_freeze_proof (plain HTTP from the controller, one call
each inside the window) take this plugin too: their action plugins are this class, and the module
run is the task's own.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from types import ModuleType
from typing import Any, Optional

import ansible.module_utils
import ansible.module_utils.basic as basic
from ansible import constants as C
from ansible.plugins.action import ActionBase
from ansible.plugins.loader import module_loader

PROFILE = "legacy"


def _module_code(name: str) -> ModuleType:
    """library/<name>.py, importable here: the project's module_utils join ansible.module_utils."""
    for path in C.DEFAULT_MODULE_UTILS_PATH or []:
        if path not in ansible.module_utils.__path__:
            ansible.module_utils.__path__.append(path)
    found = module_loader.find_plugin_with_context(name)
    if not found.resolved or not found.plugin_resolved_path:
        raise RuntimeError(f"module {name} not found in {C.DEFAULT_MODULE_PATH}")
    spec = importlib.util.spec_from_file_location(f"chroma_runbook_module_{name}", found.plugin_resolved_path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {found.plugin_resolved_path}")
    code = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(code)
    return code


def _run_here(code: ModuleType, module_args: dict[str, Any]) -> str:
    """What the module prints (its JSON result) when it runs with ``module_args`` in this process."""
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": module_args}).encode("utf-8")  # noqa: SLF001
    basic._ANSIBLE_PROFILE = PROFILE  # noqa: SLF001
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            code.run_module()
        except SystemExit:  # exit_json and fail_json end with sys.exit, as in a module process
            pass
    return out.getvalue()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: Optional[str] = None, task_vars: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        module = self._task.action.rsplit(".", 1)[-1]
        module_args = dict(self._task.args)
        if getattr(self._connection, "transport", "") != "local":
            result.update(self._execute_module(module_name=module, module_args=module_args, task_vars=task_vars))
            return result
        self._update_module_args(module, module_args, task_vars)
        module_args["_ansible_tmpdir"] = None
        try:
            output = _run_here(_module_code(module), module_args)
        except Exception as exc:  # noqa: BLE001 - what a crashed module process would report, named
            result.update(failed=True, msg=f"{module} failed in the controller's process: {type(exc).__name__}: {exc}")
            return result
        result.update(self._parse_returned_data({"stdout": output}, PROFILE))
        return result
