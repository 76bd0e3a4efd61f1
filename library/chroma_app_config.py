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
  backup_to:
    description:
      - A path on the controller to back the file up to before it is edited, once per run. The task reads the
        file (content, mode, owner, group), writes the copy there (file 0600, directory 0700, written and synced
        before the edit) and C(<backup_to>.meta.json) beside it with the original path, mode, owner and group
        (what the rollback puts back), then edits the file only if it is still what was copied
        (O(expect_checksum)).
      - When the copy and its record already exist (a second run, or a run resumed after the edit) they are kept
        as they are, so the backup is always the file as it was before the run's first edit. A copy without its
        record was cut short before the edit and is taken again.
      - Handled by the action plugin on the controller; check mode writes neither the copy nor the file.
    type: path
  read_original:
    description:
      - Change nothing; return the file's C(content_b64), C(checksum) (SHA-1), C(mode), C(owner) and C(group).
        What O(backup_to) uses; the content may hold secrets.
    type: bool
    default: false
  expect_checksum:
    description: Edit only if the file's SHA-1 is this one (it was not changed since it was backed up); else fail.
    type: str
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
backup:
  description: With O(backup_to), the backup - C(path), C(taken) (true when this task took it, false when the run's
    backup already existed) and the original C(mode), C(owner), C(group).
  returned: when O(backup_to) is set
  type: dict
file_changed:
  description: With O(backup_to), whether the app's config file was (or in check mode would be) edited; C(changed)
    is also true when the backup was taken.
  returned: when O(backup_to) is set
  type: bool
checksum:
  description: With O(read_original), the file's SHA-1.
  returned: when O(read_original) is true
  type: str
"""

import base64
import grp
import hashlib
import os
import pwd
import stat

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


def _read_bytes(module: AnsibleModule, path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        module.fail_json(msg=f"cannot read the app's config file {path}: {exc.strerror}")
        raise


def _name(lookup, ident: int) -> str:  # type: ignore[no-untyped-def]
    try:
        return str(lookup(ident)[0])
    except KeyError:  # an id without a name on this host: the number is what chown takes back
        return str(ident)


def _original(module: AnsibleModule, path: str) -> dict:
    """What the backup needs: the file's bytes (base64), SHA-1, mode, owner and group."""
    raw = _read_bytes(module, path)
    info = os.stat(path)
    return {"changed": False, "content_b64": base64.b64encode(raw).decode("ascii"),
            "checksum": hashlib.sha1(raw).hexdigest(), "mode": f"{stat.S_IMODE(info.st_mode):04o}",  # noqa: S324 - a change check
            "owner": _name(pwd.getpwuid, info.st_uid), "group": _name(grp.getgrgid, info.st_gid)}


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
            "backup_to": {"type": "path"},
            "read_original": {"type": "bool", "default": False},
            "expect_checksum": {"type": "str"},
        },
        supports_check_mode=True,
    )
    p = module.params
    if p["backup_to"]:  # the action plugin takes it out; here it would be ignored and the file edited unbacked
        module.fail_json(msg=f"backup_to is handled on the controller by the chroma_app_config action plugin "
                             f"(plugins/action: set action_plugins in ansible.cfg); it did not run, so {p['path']} "
                             "was neither backed up nor edited")
    if p["read_original"]:
        module.exit_json(**_original(module, p["path"]))
    raw = _read_bytes(module, p["path"])
    if p["expect_checksum"] and hashlib.sha1(raw).hexdigest() != p["expect_checksum"]:  # noqa: S324 - a change check
        module.fail_json(msg=f"{p['path']} changed since its backup was taken (SHA-1 {p['expect_checksum']}): "
                             "not edited; run the cutover again to back up what it holds now")
    try:
        wanted = derive(p["settings"], p["connection"])
        before = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as text mode reads it
        values = {s.key: s.value for s in wanted}
        after = edit(before, p["format"], values, p["service"])
        current = read_values(before, p["format"], p["service"])
    except UnicodeDecodeError as exc:
        module.fail_json(msg=f"{p['path']} is not UTF-8 text ({exc.reason} at byte {exc.start}): not edited")
        return
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
