"""Action plugin for chroma_app_config: with ``backup_to``, back the app's config file up on the controller
and then edit it, in one task (see the module's documentation); the module itself runs as chroma_run's
plugin runs it (in the controller's process on a local connection, else on the app's host).

The backup is durable before the edit: the copy and its record are written and synced on the controller
first, and the edit then refuses a file that changed since it was copied (``expect_checksum``). A run
killed at any point leaves either no complete backup and an unedited file (the next run takes the backup
again) or a complete backup of the unedited file.
"""
from __future__ import annotations

import base64
import importlib
import sys
from pathlib import Path
from typing import Any, Optional

from ansible.plugins.loader import action_loader

_Base = action_loader.get("chroma_run", class_only=True)
sys.modules[_Base.__module__].warm_module("chroma_app_config")


def _backups() -> Any:
    """The engine's backup rules (module_utils/chroma_runbook/run/backups.py), importable here."""
    sys.modules[_Base.__module__].join_module_utils()
    return importlib.import_module("ansible.module_utils.chroma_runbook.run.backups")


class ActionModule(_Base):  # type: ignore[misc,valid-type]
    def run(self, tmp: Optional[str] = None, task_vars: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        args = dict(self._task.args)
        backup_to = args.pop("backup_to", None)
        if not backup_to:
            return super().run(tmp, task_vars)
        result = super(_Base, self).run(tmp, task_vars)  # ActionBase's checks, not a module run
        backup = Path(backup_to)
        backup_info: dict[str, Any] = {"path": str(backup), "taken": False}
        backups = _backups()
        if not backups.backup_complete(backup):
            original = self._call(self._module_name(), dict(args, read_original=True), task_vars)
            if original.get("failed"):
                result.update(original)
                return result
            meta = {key: original[key] for key in ("mode", "owner", "group")}
            meta["path"] = args["path"]
            backup_info.update(meta, taken=True)
            if not self._task.check_mode:
                try:
                    backups.write_backup(backup, base64.b64decode(original["content_b64"]), meta)
                except OSError as exc:
                    result.update(failed=True, msg=f"cannot back {args['path']} up to {backup} on the controller: "
                                                   f"{exc.strerror or exc}; the file was not edited")
                    return result
            args["expect_checksum"] = original["checksum"]
        result.update(self._call(self._module_name(), args, task_vars))
        result["backup"] = backup_info
        result["file_changed"] = bool(result.get("changed"))
        result["changed"] = result["file_changed"] or backup_info["taken"]
        return result
