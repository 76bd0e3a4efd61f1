"""The one atomic JSON writer (fsutil.write_json_atomic): every JSON file the engine
replaces (run state, checkpoint, spool manifest, reports) is fsync'd, renamed over the
old one, and its directory fsync'd; a reader never sees a partial file."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from chroma_runbook.migrate import checkpoint

from chroma_runbook.io import fsutil
from chroma_runbook.run import run_state as rs
from chroma_runbook.validation import report

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fsyncs(monkeypatch):
    """Each real os.fsync call, recorded as ("file" | "dir", path of the fd)."""
    seen: list[tuple[str, str]] = []
    real = os.fsync

    def recording(fd: int) -> None:
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        seen.append((kind, os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return seen


def test_run_state_writes_fsync_the_file_and_its_directory(tmp_path, fsyncs):
    opened = rs.open_run(tmp_path)
    fsyncs.clear()
    changed, _ = rs.mutate_state(opened.paths, lambda s: s.setdefault("data", {}).update(x=1))
    assert changed
    state_file = str(opened.paths.state_file)
    assert ("dir", str(opened.paths.run_dir)) in fsyncs
    assert ("file", state_file) not in fsyncs        # the temp file is fsync'd, then renamed over it
    files = [p for kind, p in fsyncs if kind == "file"]
    assert len(files) == 1 and Path(files[0].replace(" (deleted)", "")).parent == opened.paths.run_dir
    assert json.loads(Path(state_file).read_text())["data"] == {"x": 1}
    assert oct(Path(state_file).stat().st_mode & 0o777) == "0o600"     # private (issue 10, point 9)
    fsyncs.clear()
    summary = tmp_path / "summary.json"
    assert rs.write_json_if_changed(summary, {"a": 1})
    assert [k for k, _ in fsyncs] == ["file", "dir"] and fsyncs[1][1] == str(tmp_path)


def test_the_checkpoint_and_the_reports_use_the_same_writer(tmp_path, fsyncs):
    checkpoint.write_atomic(str(tmp_path / "r.checkpoint.json"), {"checkpoint_version": 1})
    assert checkpoint.load(str(tmp_path / "r.checkpoint.json")) == {"checkpoint_version": 1}
    assert [k for k, _ in fsyncs] == ["file", "dir"] and fsyncs[1][1] == str(tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp file left behind"
    assert report.write_atomic is fsutil.write_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "f.json"
    fsutil.write_json_atomic(path, {"v": 1})
    with pytest.raises(TypeError):
        fsutil.write_atomic(path, 12345)          # not bytes nor str: fails before the rename
    assert json.loads(path.read_text()) == {"v": 1} and [p.name for p in tmp_path.iterdir()] == ["f.json"]


WRITER = """
import sys
sys.path.insert(0, {utils!r})
from chroma_runbook.io.fsutil import write_json_atomic
i = 0
while True:
    i += 1
    write_json_atomic({path!r}, {{"i": i, "pad": "x" * (200000 + i % 5000)}})
    if i == 5:
        print("ready", flush=True)
"""


def test_a_reader_never_sees_a_partial_file_even_when_the_writer_is_killed(tmp_path):
    path = tmp_path / "state.json"
    fsutil.write_json_atomic(path, {"i": 0, "pad": ""})
    proc = subprocess.Popen([sys.executable, "-c", WRITER.format(utils=str(REPO / "module_utils"), path=str(path))],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        seen = set()
        for _ in range(300):
            seen.add(json.loads(path.read_text())["i"])       # a partial file would not parse
        proc.send_signal(signal.SIGKILL)                       # mid-write, most likely
        proc.wait(timeout=30)
        last = json.loads(path.read_text())
        assert last["i"] >= max(seen) and len(last["pad"]) >= 200000
        assert len(seen) > 1, "the reader saw the file change while it was rewritten"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
