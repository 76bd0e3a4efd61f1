"""The chroma-runbook engine: plain Python, no Ansible imports.

Modules in ``library/`` import it as ``ansible.module_utils.chroma_runbook.<layer>.<module>``;
tests put ``module_utils/`` on ``sys.path`` and import ``chroma_runbook.<layer>.<module>``.
Submodules import each other relatively so both spellings work.

The engine is layered; imports flow one way, downwards only:

    validation        may import migrate, snapshot, run, io
    migrate, snapshot siblings: each may import run and io, never each other
    run               may import io
    io                imports nothing else of the engine

``tests/unit/test_engine_layers.py`` fails on any import against this order.
"""
