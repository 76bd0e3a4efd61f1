"""The local lab: dataset generator, demo apps and the lab controller (labctl).

The lab reuses the engine's connection helpers, so ``module_utils/`` is put on
``sys.path`` when this package is imported.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_ENGINE_PATH = str(REPO / "module_utils")
if _ENGINE_PATH not in sys.path:
    sys.path.insert(0, _ENGINE_PATH)
