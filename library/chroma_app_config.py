#!/usr/bin/python
"""Ansible module: point an application's Chroma settings at a connection (thin wrapper over the engine)."""
from __future__ import annotations

DOCUMENTATION = r"""
---
module: chroma_app_config
short_description: Set the keys an application reads to reach Chroma, derived from a connection
description:
  - "Each key of O(settings) names what it holds, derived from O(connection): C(url), C(host), C(port),
    C(ssl) (C(true) or C(false)), C(headers) (comma-separated C(k=v) pairs as Open WebUI's CHROMA_HTTP_HEADERS,
    or a JSON object with C(from: headers, format: json)), C(tenant), C(database), or a literal with C(value: ...)."
  - The keys live in an C(.env) file (O(format=env), C(KEY=value) lines) or in one service's C(environment) of a
    docker-compose file (O(format=compose), list form C(- KEY=value) or map form C(KEY -> value)). Every other line
    and comment is kept; keys the file lacks are appended to the right block.
  - Header values are secrets - the keys they go to are masked in the diff and in the result, and the
    headers are never logged.
  - Runs on the application's host; needs nothing beyond the Python standard library there.
version_added: "1.0.0"
author: chroma-runbook
options:
  path:
    description: The app's config file (.env or docker-compose file). It must exist.
    type: path
    required: true
  format:
    description: How the file is written.
    type: str
    choices: [env, compose]
    default: env
  service:
    description: The compose service whose C(environment) holds the keys (O(format=compose)).
    type: str
    default: ""
  settings:
    description: Mapping of each key to what it holds (see the description).
    type: dict
    required: true
  connection:
    description: The connection the app must use - C(url), and optionally C(headers), C(tenant), C(database).
    type: dict
    required: true
    suboptions:
      url:
        description: http(s)://host:port of Chroma (or of the proxy in front of it) as the app reaches it.
        type: str
        required: true
      headers:
        description: HTTP headers the app sends (secrets; never logged).
        type: dict
        default: {}
      tenant:
        description: Tenant.
        type: str
        default: default_tenant
      database:
        description: Database.
        type: str
        default: default_database
      path:
        description: Ignored (an embedded connection cannot be given to a remote app).
        type: path
      ssl_verify:
        description: Ignored here.
        type: bool
        default: true
      timeout:
        description: Ignored here.
        type: float
        default: 60
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Point Open WebUI (docker compose) at the new Chroma
  chroma_app_config:
    path: /root/docker-compose.yml
    format: compose
    service: open-webui
    connection: {url: "https://chroma-new.example:8000", headers: {Authorization: "Bearer s3cret"}}
    settings:
      CHROMA_HTTP_HOST: host
      CHROMA_HTTP_PORT: port
      CHROMA_HTTP_SSL: ssl
      CHROMA_HTTP_HEADERS: headers
      CHROMA_TENANT: tenant
      CHROMA_DATABASE: database

- name: An app that reads one URL from its .env
  chroma_app_config:
    path: /srv/chatbot/.env
    connection: {url: "http://10.0.0.6:8000"}
    settings: {CHROMADB_URL: url}
"""

RETURN = r"""
keys:
  description: The keys set, in the order of O(settings).
  returned: always
  type: list
  elements: str
secret_keys:
  description: Keys whose values are masked wherever they are shown.
  returned: always
  type: list
  elements: str
values:
  description: Each key's value, secret ones masked.
  returned: always
  type: dict
changed_keys:
  description: Keys whose value in the file differed (or that the file lacked).
  returned: always
  type: list
  elements: str
previous:
  description: Each key's value in the file before the edit (null when the file lacked it), secret ones masked when set.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible.module_utils.chroma_runbook.run.app_settings import MASK, AppSettingsError, derive, edit, mask, read_values

CONNECTION_OPTIONS = {
    "url": {"type": "str", "required": True},
    "headers": {"type": "dict", "no_log": True, "default": {}},
    "tenant": {"type": "str", "default": "default_tenant"},
    "database": {"type": "str", "default": "default_database"},
    "path": {"type": "path"},
    "ssl_verify": {"type": "bool", "default": True},
    "timeout": {"type": "float", "default": 60.0},
}


def _read(module: AnsibleModule, path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        module.fail_json(msg=f"cannot read the app's config file {path}: {exc.strerror}")
        raise


def _write(module: AnsibleModule, path: str, content: str) -> None:
    tmp = f"{path}.chroma-runbook.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(content)
        module.atomic_move(tmp, path)  # keeps the file's owner, mode and SELinux context
    except OSError as exc:
        module.fail_json(msg=f"cannot write the app's config file {path}: {exc.strerror}")


def run_module() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "format": {"type": "str", "choices": ["env", "compose"], "default": "env"},
            "service": {"type": "str", "default": ""},
            "settings": {"type": "dict", "required": True},
            "connection": {"type": "dict", "required": True, "options": CONNECTION_OPTIONS},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        wanted = derive(p["settings"], p["connection"])
        before = _read(module, p["path"])
        values = {s.key: s.value for s in wanted}
        after = edit(before, p["format"], values, p["service"])
        current = read_values(before, p["format"], p["service"])
    except AppSettingsError as exc:
        module.fail_json(msg=f"{p['path']}: {exc}")
        return
    secret = [s.key for s in wanted if s.secret]
    result = {
        "changed": after != before,
        "keys": [s.key for s in wanted],
        "secret_keys": secret,
        "values": {s.key: MASK if s.secret else s.value for s in wanted},
        "changed_keys": [s.key for s in wanted if current.get(s.key) != s.value],
        "previous": {s.key: (MASK if s.secret and current.get(s.key) else current.get(s.key)) for s in wanted},
    }
    if module._diff:
        result["diff"] = {"before_header": p["path"], "after_header": p["path"],
                          "before": mask(before, p["format"], secret, p["service"]),
                          "after": mask(after, p["format"], secret, p["service"])}
    if result["changed"] and not module.check_mode:
        _write(module, p["path"], after)
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
