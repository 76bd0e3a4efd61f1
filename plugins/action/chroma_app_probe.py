"""Action plugin for chroma_app_probe: run in the controller's own process on a local connection (see chroma_run)."""
from __future__ import annotations

import sys

from ansible.plugins.loader import action_loader

ActionModule = action_loader.get("chroma_run", class_only=True)
sys.modules[ActionModule.__module__].warm_module("chroma_app_probe")
