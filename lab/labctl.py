"""Bring the local lab up, down, or show its status.

    python -m lab.labctl up|down|status [--dir DIR] [--port-base N] [--variant legacy|damaged] [--scale F]
    python -m lab.labctl down --purge [--dir DIR]     # and delete DIR: the next up starts fresh

``up`` is idempotent: on a running lab it changes nothing, on a half-running
lab it starts what is down (never a duplicate), and a lab port held by
something else is an error naming the port and the process. It waits until
both Chromas, nginx and both apps are healthy, then loads the legacy dataset
into the source unless it already holds it. ``down`` stops supervisord (and its
programs) and nginx through the lab's own socket and pid file and waits until
nothing listens on the lab's ports. The map of the lab is written to DIR/lab.json.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from . import dataset
from .health import Probe, probe_all, wait_healthy
from .layout import DEFAULT_DIR, DEFAULT_PORT_BASE, PROGRAMS, LabLayout, LayoutError, venv_bin
from .processes import (
    NGINX,
    LabError,
    Listener,
    foreign_listeners,
    is_orphan_of,
    lab_pids,
    listeners,
    nginx_process,
    program_states,
    start_missing_programs,
    start_nginx,
    start_supervisord,
    stop_nginx,
    stop_orphans,
    stop_supervisord,
    supervisord_process,
)
from .render import render_all, write_if_changed

Say = Callable[[str], None]


def _say(message: str) -> None:
    print(f"lab: {message}", flush=True)


def resolve_layout(directory: Path | str, port_base: Optional[int], source: Optional[str] = None) -> LabLayout:
    """The layout for --dir/--port-base/--source; what is not given comes from lab.json (or 8000, 1.x)."""
    recorded = read_map(Path(directory).expanduser().resolve() / "lab.json")
    if port_base is None:
        port_base = int(recorded.get("port_base", DEFAULT_PORT_BASE))
    if source is None:
        source = str(recorded.get("source_version") or "")
    return LabLayout.create(directory, port_base, source)


def read_map(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def holds_lab(layout: LabLayout) -> bool:
    """Whether the directory was made by labctl (so down/purge may act on it)."""
    return layout.lab_json.exists() or layout.supervisord_conf.exists()


def is_running(layout: LabLayout) -> bool:
    return supervisord_process(layout) is not None or nginx_process(layout) is not None


def _check_tools(bin_dir: Path) -> None:
    missing = [str(bin_dir / tool) for tool in ("chroma", "supervisord") if not (bin_dir / tool).exists()]
    if not Path(NGINX).exists() and not shutil.which("nginx"):
        missing.append(f"{NGINX} (make nginx)")
    if missing:
        raise LabError(f"missing: {', '.join(missing)}; run `make venv nginx` first")


def _check_same_base(layout: LabLayout) -> None:
    """A lab directory keeps its port base: app.env and upstream.conf name its ports."""
    recorded = read_map(layout.lab_json).get("port_base")
    if recorded is not None and recorded != layout.port_base:
        state = "runs" if is_running(layout) else "was made"
        raise LabError(f"the lab in {layout.root} {state} on port base {recorded}, not {layout.port_base}; "
                       f"use --port-base {recorded} or another --dir")
    source = read_map(layout.lab_json).get("source_version")
    if source is not None and source != layout.source and layout.data_dir("source_chroma").exists():
        raise LabError(f"the lab in {layout.root} holds a source made by Chroma {source or '1.x'}, not "
                       f"{layout.source or '1.x'}; use another --dir, or lab-clean first")


@contextmanager
def _lab_lock(layout: LabLayout) -> Iterator[None]:
    """One labctl at a time per lab directory."""
    layout.root.mkdir(parents=True, exist_ok=True)
    with open(layout.root / ".labctl.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(f"another labctl works on {layout.root}; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _refuse_strangers(layout: LabLayout) -> None:
    """A lab port held by something that is not this lab (nor a leftover of it) is an error."""
    others = [f for f in foreign_listeners(layout) if not is_orphan_of(layout, f)]
    if others:
        lines = "\n  ".join(item.describe() for item in others)
        raise LabError(f"cannot bring up the lab in {layout.root} (port base {layout.port_base}):\n  {lines}\n"
                       f"stop that process or choose another --port-base")


def _stop_leftovers(layout: LabLayout, say: Say) -> None:
    """Stop processes of this lab whose supervisord or nginx master is gone."""
    leftovers = [f for f in foreign_listeners(layout) if is_orphan_of(layout, f)]
    for item in stop_orphans(layout, leftovers):
        say(f"stopped a leftover of this lab: {item.describe()}")


def _ensure_supervisord(layout: LabLayout, bin_dir: Path, say: Say) -> None:
    proc = supervisord_process(layout)
    if proc is None:
        pid = start_supervisord(layout, bin_dir)
        say(f"started supervisord (pid {pid}) with {', '.join(PROGRAMS)}")
        return
    started = start_missing_programs(layout)
    if started:
        say(f"supervisord (pid {proc.pid}) was running; started {', '.join(started)}")


def _ensure_nginx(layout: LabLayout, say: Say) -> None:
    if nginx_process(layout) is None:
        pid = start_nginx(layout)
        say(f"started nginx (pid {pid}) on {layout.front_door_url}")


def _fatal_reason(layout: LabLayout) -> Optional[str]:
    """Why waiting is pointless: a program supervisord gave up on, or a dead nginx."""
    for name, info in program_states(layout).items():
        if info["statename"] == "FATAL":
            log = layout.logs / f"{name}.log"
            tail = log.read_text(errors="replace")[-1200:] if log.exists() else ""
            return f"program {name} is {info['statename']}; tail of {log}:\n{tail}"
    if nginx_process(layout) is None:
        return f"nginx exited; see {layout.nginx_logs}/error.log"
    return None


def write_map(layout: LabLayout, dataset_info: dict[str, Any]) -> None:
    write_if_changed(layout.lab_json, json.dumps(layout.describe(dataset_info), indent=2) + "\n")


def _load_dataset(layout: LabLayout, requested: dict[str, Any], say: Say) -> dict[str, Any]:
    """Load the dataset into the source unless it holds it; returns what the source holds."""
    recorded = read_map(layout.lab_json).get("dataset")
    if layout.source:   # a legacy source is loaded by its own version's client
        from . import legacy

        say(legacy.load_dataset(layout.source, layout.url("source_chroma"), requested["variant"],
                                requested["scale"], requested["seed"]))
        return requested
    report = dataset.load(layout.url("source_chroma"), requested["variant"], requested["scale"], requested["seed"])
    if report.loaded:
        say(f"source {layout.url('source_chroma')}: {report.summary()}")
        return requested
    if recorded and recorded != requested:
        say(f"the source already holds {_dataset_label(recorded)}; {_dataset_label(requested)} not loaded "
            f"(to change it: down, remove {layout.data_dir('source_chroma')}, up)")
    return recorded or requested


def _dataset_label(info: dict[str, Any]) -> str:
    return f"the {info.get('variant')} dataset (scale {info.get('scale')}, seed {info.get('seed')})"


def up(layout: LabLayout, variant: str = "legacy", scale: float = 1.0, seed: int = dataset.DEFAULT_SEED,
       timeout: float = 120.0, say: Say = _say) -> dict[str, Probe]:
    """Bring the lab up (or repair it); returns the final health probes."""
    bin_dir = venv_bin()
    _check_tools(bin_dir)
    if layout.source:
        from . import legacy

        say(f"source: Chroma {layout.source} from {legacy.ensure_venv(layout.source)}")
    _check_same_base(layout)
    _refuse_strangers(layout)
    with _lab_lock(layout):
        _refuse_strangers(layout)
        _stop_leftovers(layout, say)
        for path in render_all(layout, bin_dir):
            say(f"wrote {path}")
        if not layout.lab_json.exists():
            write_map(layout, {})
        _ensure_supervisord(layout, bin_dir, say)
        _ensure_nginx(layout, say)
        unhealthy = [name for name, probe in probe_all(layout).items() if not probe.ok]
        if unhealthy:
            say(f"waiting for {', '.join(unhealthy)} to be healthy (up to {timeout:.0f}s)")
        try:
            wait_healthy(layout, timeout, lambda: _fatal_reason(layout))
        except TimeoutError as exc:
            raise LabError(f"the lab in {layout.root} is not healthy: {exc}") from exc
        held = _load_dataset(layout, {"variant": variant, "scale": scale, "seed": seed}, say)
        write_map(layout, held)
    return probe_all(layout)


def down(layout: LabLayout, timeout: float = 30.0, say: Say = _say) -> None:
    """Stop everything this lab started; wait until none of it listens on the lab's ports."""
    if not holds_lab(layout):
        say(f"no lab in {layout.root}")
        return
    with _lab_lock(layout):
        ours = lab_pids(layout)
        pid = stop_supervisord(layout)
        if pid:
            say(f"supervisord (pid {pid}) shut down with its programs")
        pid = stop_nginx(layout)
        if pid:
            say(f"nginx (pid {pid}) stopped")
        deadline = time.monotonic() + timeout
        while True:
            for item in stop_orphans(layout, listeners(layout)):
                say(f"stopped a leftover of this lab: {item.describe()}")
            held = listeners(layout)
            if not [item for item in held if item.pid in ours or is_orphan_of(layout, item)]:
                break
            if time.monotonic() > deadline:
                lines = "\n  ".join(item.describe() for item in held)
                raise LabError(f"after stopping the lab in {layout.root}, still listening:\n  {lines}")
            time.sleep(0.2)
    for item in held:
        say(f"warning: {item.describe()}, which is not part of this lab")


def purge(layout: LabLayout, say: Say = _say) -> None:
    """Delete a stopped lab's directory (data, runs, reports); only a directory that holds a lab."""
    if not layout.root.exists():
        return
    if not holds_lab(layout):
        raise LabError(f"{layout.root} holds no lab (no lab.json, no supervisord.conf); not deleting it")
    if is_running(layout):
        raise LabError(f"the lab in {layout.root} still runs; not deleting it")
    shutil.rmtree(layout.root)
    say(f"deleted {layout.root}")


def status_rows(layout: LabLayout) -> list[tuple[str, str, str, str, str]]:
    """(component, port, pid, state, health) per component."""
    states = program_states(layout)
    probes = probe_all(layout)
    ours = lab_pids(layout)
    strangers = {item.component: item for item in listeners(layout) if item.pid not in ours}
    sup = supervisord_process(layout)
    rows = [("supervisord", "-", str(sup.pid) if sup else "-", "running" if sup else "stopped",
             str(layout.supervisor_socket))]
    ngx = nginx_process(layout)
    rows.append(("nginx", str(layout.port("nginx")), str(ngx.pid) if ngx else "-",
                 "running" if ngx else "stopped", _health(probes["nginx"], strangers.get("nginx"))))
    for program in PROGRAMS:
        info = states.get(program, {})
        rows.append((program, str(layout.port(program)), str(info.get("pid") or "-"),
                     info.get("statename", "stopped"), _health(probes[program], strangers.get(program))))
    return rows


def _health(probe: Probe, stranger: Optional[Listener]) -> str:
    if stranger is not None:
        return f"NOT THIS LAB: {stranger.describe()}"
    return ("ok: " if probe.ok else "DOWN: ") + probe.detail


def format_table(rows: list[tuple[str, ...]]) -> str:
    header = ("COMPONENT", "PORT", "PID", "STATE", "HEALTH")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    return "\n".join(lines)


def status(layout: LabLayout) -> bool:
    """Print the status table; True when every component is healthy."""
    rows = status_rows(layout)
    print(f"lab {layout.root} (port base {layout.port_base})")
    print(format_table(rows))
    return all(row[4].startswith("ok") or row[0] == "supervisord" for row in rows) and rows[0][3] == "running"


def _parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lab.labctl", description="Control the local lab.")
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--dir", default=None, help="lab directory (default: .lab in the repo, .lab-hosts with --hosts netns)")
    parser.add_argument("--hosts", choices=("local", "netns"), default="local",
                        help="local: everything on 127.0.0.1; netns: proxy and app hosts in network namespaces "
                             "reached over SSH (lab/netns.py)")
    parser.add_argument("--port-base", type=int, default=None,
                        help=f"first of the lab's 12 ports (default: the one in DIR/lab.json, else {DEFAULT_PORT_BASE})")
    parser.add_argument("--source", default=None,
                        help="up: run the source with a legacy Chroma (0.4.24 or 0.5.23, from .cache/legacy); "
                             "'' for the project's chromadb (default: what DIR/lab.json records)")
    parser.add_argument("--variant", choices=dataset.VARIANTS, default="legacy", help="dataset loaded by up")
    parser.add_argument("--scale", type=float, default=1.0, help="dataset size factor for up")
    parser.add_argument("--seed", type=int, default=dataset.DEFAULT_SEED)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds up waits for health")
    parser.add_argument("--purge", action="store_true",
                        help="down: then delete DIR (data, runs, reports) so the next up starts fresh")
    return parser.parse_args(argv)


def _main_netns(args: argparse.Namespace) -> int:
    from . import netns

    directory = args.dir or str(DEFAULT_DIR.with_name(".lab-hosts"))
    if args.action == "up":
        started = time.monotonic()
        netns.up(directory, args.port_base or DEFAULT_PORT_BASE, args.variant, args.scale, args.seed, args.timeout)
        ok = netns.status(directory)
        _say(f"multi-host lab up in {time.monotonic() - started:.1f}s; map in {directory}/lab.json; "
             f"inventory inventory/lab-hosts.yml")
        return 0 if ok else 1
    if args.action == "down":
        netns.down(directory, purge=args.purge)
        return 0
    return 0 if netns.status(directory) else 1


def main(argv: Optional[list[str]] = None) -> int:
    args = _parse_args(argv)
    try:
        if args.hosts == "netns":
            return _main_netns(args)
        args.dir = args.dir or str(DEFAULT_DIR)
        layout = resolve_layout(args.dir, args.port_base, args.source)
        if args.action == "up":
            started = time.monotonic()
            up(layout, args.variant, args.scale, args.seed, args.timeout)
            status(layout)
            _say(f"up and healthy in {time.monotonic() - started:.1f}s; map in {layout.lab_json}")
            return 0
        if args.action == "down":
            down(layout)
            _say(f"down: nothing of this lab listens on ports {', '.join(map(str, layout.ports.values()))}")
            if args.purge:
                purge(layout)
            return 0
        return 0 if status(layout) else 1
    except (LabError, LayoutError, ValueError) as exc:
        print(f"lab: error: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
