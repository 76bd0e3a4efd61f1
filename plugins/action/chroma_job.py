"""Action plugin for chroma_job: the job files' directory from the connection's shell option (as
async_status's own action plugin finds it), then the module in the controller's own process on a
local connection (see chroma_run) - a poll costs no new Python interpreter."""
from __future__ import annotations

import sys
from typing import Any, Optional

from ansible.plugins.loader import action_loader

InProcess = action_loader.get("chroma_run", class_only=True)
sys.modules[InProcess.__module__].warm_module("chroma_job")


class ActionModule(InProcess):  # type: ignore[misc, valid-type]
    def run(self, tmp: Optional[str] = None, task_vars: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        if not self._task.args.get("async_dir"):
            self._task.args["async_dir"] = self.get_shell_option("async_dir", default="~/.ansible_async")
        return super().run(tmp, task_vars)
