"""The chroma-runbook engine: plain Python, no Ansible imports.

Modules in ``library/`` import it as ``ansible.module_utils.chroma_runbook``;
tests put ``module_utils/`` on ``sys.path`` and import ``chroma_runbook``.
Submodules import each other relatively so both spellings work.
"""
