"""The gate's drift check, run beside other work: fingerprint the live source in a child process.

Under the freeze the validation reads the run's snapshot and the target, while the live
source's server sits idle; the drift check reads only the live source. Started when the
validation starts, the check overlaps the validation instead of following it (two full reads
of ~2 s each in the lab, one after the other before). Its client-side work (parsing the pages'
JSON, ~1.4 s of CPU for the lab's 8,832 records) runs in a forked child, not a thread: a thread
would hold the same interpreter lock as the validation and overlap almost nothing. The child is
forked before the caller opens any connection, so it shares no socket with it, opens its own
reader, writes its fingerprint as JSON to a pipe and exits; the parent reads it after its own
work, with a deadline past which the child is killed (by its pid) and the check counts as not
done.

What it proves is the same as the gate's own check: every collection in the snapshot's scope
has the fingerprint it had at the snapshot (nothing created, dropped or written since). Only
the moment differs: it covers writes up to the pages it reads, during the validation, not up to
the gate. A check that could not finish says why and proves nothing: the gate then takes its own.
"""
from __future__ import annotations

import json
import os
import select
import signal
import time
from typing import Any, Callable, Mapping, Optional

from .clock import utc_stamp
from .fingerprint import drift, take_fingerprint


def fingerprint_scope(expected: Mapping[str, Any]) -> Optional[list[str]]:
    """The collections a fingerprint covers: None for every collection ("all"), else the names."""
    scope = expected.get("scope", "all")
    return None if scope == "all" else sorted(scope)


def _child(open_reader: Callable[[], Any], scope: Optional[list[str]], label: str, out_fd: int) -> None:
    """In the forked child: fingerprint, write one JSON document to ``out_fd``, never return."""
    code = 0
    try:
        began = time.perf_counter()
        taken = take_fingerprint(open_reader(), scope)
        payload = {"taken": taken, "duration_s": round(time.perf_counter() - began, 3), "ended_at": utc_stamp()}
    except BaseException as exc:  # noqa: BLE001 - anything: the parent is told why, the child exits
        payload = {"error": f"cannot fingerprint the collections of {label}: {type(exc).__name__}: {exc}"}
        code = 1
    try:
        data = json.dumps(payload).encode("utf-8")
        while data:
            data = data[os.write(out_fd, data):]
    finally:
        os._exit(code)  # no cleanup of the parent's state (ansible's, stdio buffers) in the child


class BackgroundDriftCheck:
    """Fingerprint a source in a forked child; ``result()`` compares it with ``expected``.

    ``start()`` must come before the caller opens its own connections (the child inherits the
    process as it is at the fork).
    """

    def __init__(self, open_reader: Callable[[], Any], expected: Mapping[str, Any], label: str) -> None:
        self._open_reader = open_reader
        self._expected = expected
        self._label = label
        self._pid = 0
        self._fd = -1
        self._started_at = ""
        self._reaped = False

    def start(self) -> "BackgroundDriftCheck":
        self._started_at = utc_stamp()
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _child(self._open_reader, fingerprint_scope(self._expected), self._label, write_fd)
        os.close(write_fd)
        self._pid, self._fd = pid, read_fd
        return self

    def _read(self, deadline: float) -> Optional[bytes]:
        """Everything the child wrote, or None when the deadline passed first."""
        chunks: list[bytes] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                return None
            chunk = os.read(self._fd, 1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def _reap(self, kill: bool) -> None:
        if self._reaped or not self._pid:
            return
        self._reaped = True
        if kill:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(self._pid, 0)
        except ChildProcessError:
            pass
        os.close(self._fd)

    def cancel(self) -> None:
        """Stop the check (the caller failed): the child is killed by its pid and reaped."""
        self._reap(kill=True)

    def result(self, timeout_s: float) -> dict[str, Any]:
        """Wait up to ``timeout_s`` for the check; ``checked`` is true only for a finished fingerprint."""
        raw = self._read(time.monotonic() + timeout_s)
        self._reap(kill=raw is None)
        out: dict[str, Any] = {"source": self._label, "started_at": self._started_at, "ended_at": utc_stamp(),
                               "expected_sha256": self._expected.get("sha256")}
        if raw is None:
            return {**out, "checked": False,
                    "error": f"the fingerprint of {self._label} did not finish within {timeout_s:g} s (child killed)"}
        try:
            payload = json.loads(raw.decode("utf-8"))
        except ValueError:
            return {**out, "checked": False, "error": f"the fingerprint of {self._label} ended without an answer"}
        if "taken" not in payload:
            return {**out, "checked": False, "error": payload.get("error") or "no fingerprint"}
        return {**out, "checked": True, "duration_s": payload.get("duration_s"),
                "ended_at": payload.get("ended_at") or out["ended_at"], "drift": drift(self._expected, payload["taken"])}
