"""Compiled Jinja code shared by the forked workers of ansible-playbook, and by its later runs.

Loaded only by the project's action plugin (plugins/action/chroma_run.py), in ansible's own
processes on the controller. It is not part of the engine (module_utils/chroma_runbook, plain Python
shipped with the modules): it patches ansible-core's Jinja environment, and no module imports it.

Ansible forks a worker for each task, and the worker compiles every template it meets: the task's
arguments, its ``when``, ``delegate_to``, the variables they refer to. A compiled template lives only
as long as that worker, so the next task compiles the same text again: about 7 templates and 17 ms
of a small task's 40-90 ms on a 2-core box, the same few hundred templates over and over in a run
(``not ansible_check_mode``, the controller's ``delegate_to``, the roles' paths).

``install(directory)`` keeps each compiled template's Python code object in ``directory`` (this
user's own, 0700: its files are loaded as code), as a file named after all that the compiled code
depends on: the template text, whether it is a template or an expression, the environment's syntax
settings (delimiters, whitespace, the ``#jinja2:`` overrides), its code generator, finalizer and
extensions, the backslash escaping ansible asks for, and the Python, Jinja and ansible versions and
files. A worker that meets the same text loads the code (``marshal``, as Jinja's own bytecode cache
does for file templates) instead of lexing, parsing, generating and compiling it, and keeps it in
memory for the rest of its task. Like ``__pycache__``, the directory outlives the run.

It is a cache, never a source of truth. Only successful compiles are kept (a template that does not
compile fails the same way every time); anything unreadable is compiled again; templates compiled
with a name or a file (includes, the template module's files), raw or deferred compiles and
ansible's template debugging are left alone. Rendering is unchanged: the same code object with the
same environment and globals as without the cache.
"""
from __future__ import annotations

import contextvars
import hashlib
import marshal
import os
import stat
import sys
import types
from typing import Any, Callable, Optional

import jinja2
import jinja2.compiler
import jinja2.lexer
import jinja2.parser
from jinja2.environment import TemplateExpression

from ansible import __version__ as ANSIBLE_VERSION
from ansible._internal._templating import _jinja_bits
from ansible._internal._templating._jinja_bits import AnsibleEnvironment

_FORMAT = "1"
# a directory holding more files than this is emptied when the cache is installed (it only ever grows
# by the distinct template texts met, a few thousand for this project)
MAX_FILES = 20000
ENV_DIRECTORY = "CHROMA_RUNBOOK_JINJA_CACHE"  # a directory, or "off"
_directory: Optional[str] = None
_memory: dict[str, types.CodeType] = {}
stats = {"loaded": 0, "compiled": 0}
# the key under which the compile of an expression's parsed template is kept (set by compile_expression)
_expression_key: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("_expression_key", default=None)


def _code_stamp() -> bytes:
    """The Python, Jinja and ansible versions, and the size and time of the files that generate the code."""
    parts = [_FORMAT, sys.version, jinja2.__version__, ANSIBLE_VERSION]
    for module in (jinja2.compiler, jinja2.lexer, jinja2.parser, _jinja_bits):
        try:
            info = os.stat(str(module.__file__))
            parts.append(f"{module.__name__}:{info.st_size}:{info.st_mtime_ns}")
        except (OSError, TypeError):
            parts.append(f"{module.__name__}:?")
    return "\0".join(parts).encode("utf-8")


_STAMPED = hashlib.sha256(_code_stamp())  # every key starts from this state (copied, not hashed again)


def _name_of(value: Any) -> str:
    """A stable name for a setting that is a function or a class (its repr would hold an address)."""
    if callable(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', type(value).__qualname__)}"
    return repr(value)


def environment_signature(env: jinja2.Environment) -> str:
    """Everything about ``env`` (and the compile ansible has started) that compiled code depends on."""
    overrides = tuple((name, getattr(env, name, None)) for name in _jinja_bits._TEMPLATE_OVERRIDE_FIELD_NAMES)
    escape = getattr(_jinja_bits._TemplateCompileContext.current(optional=True), "escape_backslashes", None)
    parts = (
        _name_of(type(env)), repr(overrides), repr(env.optimized), _name_of(env.autoescape), repr(env.is_async),
        _name_of(env.finalize), _name_of(env.code_generator_class), repr(sorted(env.extensions)),
        repr(getattr(_jinja_bits._TemplateConfig, "allow_embedded_templates", None)), repr(escape),
    )
    return "\0".join(parts)


def cache_key(kind: str, text: str, env: jinja2.Environment) -> str:
    """The file name of ``text`` compiled as a ``kind`` ("template" or "expression") in ``env``."""
    digest = _STAMPED.copy()
    for part in (kind, environment_signature(env), text):
        digest.update(b"\0\0")
        digest.update(part.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def load(key: str) -> Optional[types.CodeType]:
    """The code kept under ``key``; None when there is none or it cannot be read back."""
    code = _memory.get(key)
    if code is not None or _directory is None:
        return code
    try:
        with open(os.path.join(_directory, key), "rb") as kept:
            found = marshal.load(kept)
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(found, types.CodeType):
        return None
    _memory[key] = found
    return found


def keep(key: str, code: types.CodeType) -> None:
    """Keep ``code`` under ``key``: in memory, and in a file (written beside, then renamed: a reader sees
    all of it or nothing)."""
    _memory[key] = code
    if _directory is None:
        return
    path = os.path.join(_directory, key)
    partial = f"{path}.{os.getpid()}.part"
    try:
        with open(partial, "wb") as out:
            marshal.dump(code, out)
        os.replace(partial, path)
    except (OSError, ValueError):
        try:
            os.unlink(partial)
        except OSError:
            pass


def _plain(env: jinja2.Environment, name: Optional[str] = None, filename: Optional[str] = None,
           raw: bool = False, defer_init: bool = False) -> bool:
    """True for a compile this cache leaves alone."""
    return (_directory is None or raw or defer_init or name is not None or filename is not None
            or bool(getattr(env, "_debuggable_template_source", False)))


def _cached_compile(original: Callable[..., Any]) -> Callable[..., Any]:
    def compile(self: jinja2.Environment, source: Any, name: Optional[str] = None,  # noqa: A001 - Jinja's name
                filename: Optional[str] = None, raw: bool = False, defer_init: bool = False) -> Any:
        if _plain(self, name, filename, raw, defer_init):
            return original(self, source, name, filename, raw, defer_init)
        key: Optional[str] = None
        if isinstance(source, jinja2.nodes.Template):  # an expression's parsed template: its key was set
            key = _expression_key.get()
            _expression_key.set(None)  # for this compile only
        elif isinstance(source, str):
            key = cache_key("template", source, self)
            code = load(key)
            if code is not None:
                stats["loaded"] += 1
                return code
        code = original(self, source, name, filename, raw, defer_init)
        if key is not None and isinstance(code, types.CodeType):
            stats["compiled"] += 1
            keep(key, code)
        return code

    compile.__wrapped__ = original  # type: ignore[attr-defined]
    return compile


def _cached_compile_expression(original: Callable[..., Any]) -> Callable[..., Any]:
    def compile_expression(self: jinja2.Environment, source: Any, undefined_to_none: bool = True) -> Any:
        if _plain(self) or not isinstance(source, str):
            return original(self, source, undefined_to_none)
        key = cache_key("expression", source, self)
        code = load(key)
        if code is not None:
            stats["loaded"] += 1
            template = self.template_class.from_code(self, code, self.make_globals(None), None)
            return TemplateExpression(template, undefined_to_none)
        token = _expression_key.set(key)
        try:
            return original(self, source, undefined_to_none)
        finally:
            _expression_key.reset(token)

    compile_expression.__wrapped__ = original  # type: ignore[attr-defined]
    return compile_expression


def default_directory() -> Optional[str]:
    """``$CHROMA_RUNBOOK_JINJA_CACHE``, or ``$XDG_CACHE_HOME`` (``~/.cache``)/chroma-runbook/jinja-code;
    None when that variable says ``off``."""
    chosen = os.environ.get(ENV_DIRECTORY, "").strip()
    if chosen.lower() in ("off", "0", "false", "no"):
        return None
    if chosen:
        return chosen
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "chroma-runbook", "jinja-code")


def _private_directory(directory: str) -> bool:
    """``directory`` exists (made 0700 if missing) as this user's own, closed to everyone else."""
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        info = os.lstat(directory)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o077


def _prune(directory: str) -> None:
    """Empty ``directory`` when it holds more than MAX_FILES files (a cache; the next compiles fill it again)."""
    try:
        with os.scandir(directory) as entries:
            names = [e.name for e in entries if e.is_file(follow_symlinks=False)]
        if len(names) > MAX_FILES:
            for name in names:
                os.unlink(os.path.join(directory, name))
    except OSError:
        pass


def installed() -> Optional[str]:
    """The directory in use, None when the cache is not installed."""
    return _directory


def install(directory: Optional[str] = None) -> bool:
    """Keep compiled templates in ``directory`` (default_directory() when not given). Refused (False) when
    the cache is turned off or the directory is not this user's own with no access for others: its
    files are loaded as code."""
    global _directory
    directory = directory or default_directory()
    if directory is None:
        return False
    if _directory is not None:
        return _directory == directory
    if not _private_directory(directory):
        return False
    _prune(directory)
    _directory = directory
    AnsibleEnvironment.compile = _cached_compile(AnsibleEnvironment.compile)  # type: ignore[method-assign]
    AnsibleEnvironment.compile_expression = _cached_compile_expression(  # type: ignore[method-assign]
        AnsibleEnvironment.compile_expression)
    return True
