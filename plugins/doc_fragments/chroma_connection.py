"""Documentation of a connection dict, shared by every chroma-runbook module.

The suboptions are written once here and match ``CONNECTION_ARG_SPEC`` in
module_utils/chroma_runbook/io/connection.py. A module takes the option it names
(``extends_documentation_fragment: [chroma_connection.source]``); it may
override the option's ``description`` or ``required`` in its own DOCUMENTATION.
"""
from __future__ import annotations

_SUBOPTIONS = r"""
    suboptions:
      url:
        description:
          - Chroma server URL, C(http(s)://host:port). Exactly one of C(url) and C(path).
        type: str
      path:
        description:
          - Persist directory opened with an embedded client. Exactly one of C(url) and C(path).
        type: path
      tenant:
        description: Tenant.
        type: str
        default: default_tenant
      database:
        description: Database of the tenant.
        type: str
        default: default_database
      headers:
        description: HTTP headers sent with every request (e.g. an auth token); never logged.
        type: dict
        default: {}
      ssl_verify:
        description: Verify the server's TLS certificate (C(https) URLs).
        type: bool
        default: true
      timeout:
        description: Seconds one request may take (> 0).
        type: float
        default: 60
"""


def _option(name: str, what: str, required: bool) -> str:
    return (f"options:\n  {name}:\n    description:\n      - Connection dict of {what}.\n"
            f"    type: dict\n    required: {str(required).lower()}\n{_SUBOPTIONS}")


class ModuleDocFragment:
    """``chroma_connection.source``, ``.target``, ``.server`` and ``.front_door``: one required connection option each."""

    DOCUMENTATION = _option("server", "the Chroma server", True)
    SERVER = DOCUMENTATION
    SOURCE = _option("source", "the source Chroma server", True)
    TARGET = _option("target", "the target Chroma server", True)
    FRONT_DOOR = _option("front_door", "the front door the apps write through (the proxy in front of the source)", True)
