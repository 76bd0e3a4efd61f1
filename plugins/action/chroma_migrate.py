"""Action plugin for chroma_migrate: in the controller's own process on a local connection and the host's own
Python, with chromadb imported once per playbook (see chroma_run's EngineAction and warm_imports)."""
from __future__ import annotations

import sys

from ansible.plugins.loader import action_loader

_in_process = sys.modules[action_loader.get("chroma_run", class_only=True).__module__]
_in_process.warm_imports("chroma_migrate")
ActionModule = _in_process.EngineAction
