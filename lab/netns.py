"""The multi-host lab: a proxy host and two app hosts, each a network namespace with its own sshd and supervisord.

    python -m lab.labctl up|down|status --hosts netns [--dir DIR] [--port-base N]
    python -m lab.netns link HOST down|up [--dir DIR]     # cut a host off the network (a fault), or back
    python -m lab.netns cleanup [--dir DIR]               # remove this lab's namespaces, whatever state they are in
    python -m lab.netns cleanup --registry FILE           # every lab made while $CHROMA_LAB_NETNS_REGISTRY named FILE

Topology (``O`` is a free third octet chosen at the first ``up`` and kept in lab.json)::

    controller (root namespace)                  <prefix>-sw: bridge br0
      <prefix>g 10.231.O.1 ---- veth ------------- gw
        source Chroma 10.231.O.1:base+1            proxy -- veth -- eth0 of <prefix>-proxy 10.231.O.10
        target Chroma 10.231.O.1:base+2                              sshd :22, supervisord: nginx :8000
        webhook receiver 127.0.0.1:base+3          owui  -- veth -- eth0 of <prefix>-owui  10.231.O.11
        supervisord (DIR/supervisord.conf)                           sshd :22, supervisord: app_openwebui :8080
                                                   chat  -- veth -- eth0 of <prefix>-chat  10.231.O.12
                                                                     sshd :22, supervisord: app_chatbot :8080

``<prefix>`` is ``crb`` + 6 hex digits of the lab directory's hash, so every
namespace and link of one lab is found (and removed) by its prefix and never
touches another lab's. Nothing outside loopback and these namespaces is
addressed: the namespaces have no default route. The namespaces share the
machine's file system; each host keeps its files under DIR/hosts/<host>/.

The controller logs in with a key made for the lab (DIR/ssh/id_ed25519; host
keys pinned in DIR/ssh/known_hosts) as the user running labctl (root: network
namespaces need it), and becomes root with ``su``.
"""
from __future__ import annotations

import argparse
import fcntl
import getpass
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import jinja2
import psutil

from . import REPO, dataset, ports
from .layout import APP_STYLES, LayoutError, SupervisorFiles, venv_bin
from .processes import LabError, program_states, supervisor_rpc, supervisord_process
from .render import TEMPLATES, app_settings_lines, write_if_changed, write_if_missing

Say = Callable[[str], None]
NET = "10.231"
FRONT_DOOR_PORT = 8000
APP_PORT = 8080
SSHD = os.environ.get("LAB_SSHD", "/usr/sbin/sshd")
NGINX = os.environ.get("LAB_NGINX", "/usr/sbin/nginx")
IP = os.environ.get("LAB_IP", "/usr/sbin/ip")
# host -> (last octet, short name of its namespace, what it runs)
HOSTS: dict[str, tuple[int, str, str]] = {
    "lab_proxy": (10, "proxy", "nginx"),
    "app_openwebui": (11, "owui", "app_openwebui"),
    "app_chatbot": (12, "chat", "app_chatbot"),
}


def _say(message: str) -> None:
    print(f"lab: {message}", flush=True)


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return done


@dataclass(frozen=True)
class Site(SupervisorFiles):
    """One supervisord (the controller's, or a host's inside its namespace)."""

    root: Path
    port_base: int
    netns: Optional[str]


@dataclass(frozen=True)
class Topology:
    """Names, addresses and files of one multi-host lab (nothing here touches the system)."""

    root: Path
    port_base: int
    octet: int

    @property
    def prefix(self) -> str:
        return "crb" + hashlib.sha1(str(self.root).encode()).hexdigest()[:6]

    def netns(self, host: str) -> str:
        return f"{self.prefix}-{HOSTS[host][1] if host in HOSTS else host}"

    @property
    def switch(self) -> str:
        return self.netns("sw")

    @property
    def gw_link(self) -> str:
        return f"{self.prefix}g"

    @property
    def gateway(self) -> str:
        return f"{NET}.{self.octet}.1"

    def address(self, host: str) -> str:
        return f"{NET}.{self.octet}.{HOSTS[host][0]}"

    def host_dir(self, host: str) -> Path:
        return self.root / "hosts" / host

    def site(self, host: Optional[str] = None) -> Site:
        if host is None:
            return Site(self.root, self.port_base, None)
        return Site(self.host_dir(host), self.port_base, self.netns(host))

    @property
    def ssh_dir(self) -> Path:
        return self.root / "ssh"

    @property
    def key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    def url(self, what: str) -> str:
        ports = {"source": self.port_base + 1, "target": self.port_base + 2}
        if what in ports:
            return f"http://{self.gateway}:{ports[what]}"
        if what == "front_door":
            return f"http://{self.address('lab_proxy')}:{FRONT_DOOR_PORT}"
        if what == "notify":
            return f"http://127.0.0.1:{self.port_base + 3}"
        return f"http://{self.address(what)}:{APP_PORT}"

    def nginx_dir(self) -> Path:
        return self.host_dir("lab_proxy") / "nginx"

    def app_env(self, app: str) -> Path:
        return self.host_dir(app) / "app.env"

    @property
    def namespaces(self) -> list[str]:
        return [self.switch] + [self.netns(h) for h in HOSTS]

    def describe(self, dataset_info: dict[str, Any]) -> dict[str, Any]:
        nginx = self.nginx_dir()
        return {
            "dir": str(self.root), "port_base": self.port_base, "repo": str(REPO), "hosts_mode": "netns",
            "network": {"subnet": f"{NET}.{self.octet}.0/24", "gateway": self.gateway, "prefix": self.prefix,
                        "namespaces": self.namespaces, "switch": self.switch, "gw_link": self.gw_link},
            "urls": {"front_door": self.url("front_door"), "source": self.url("source"),
                     "target": self.url("target"), "notify": self.url("notify"),
                     **{app: self.url(app) for app in APP_STYLES}},
            "ssh": {"user": getpass.getuser(), "key": str(self.key), "known_hosts": str(self.known_hosts)},
            "hosts": {host: {"address": self.address(host), "netns": self.netns(host), "dir": str(self.host_dir(host)),
                             "supervisor_conf": str(self.site(host).supervisord_conf)} for host in HOSTS},
            "apps": {app: {"env": str(self.app_env(app)), "url": self.url(app), "program": app} for app in APP_STYLES},
            "nginx": {"conf": str(nginx / "nginx.conf"), "prefix": f"{nginx}/", "http_d": str(nginx / "http.d"),
                      "server_d": str(nginx / "server.d"), "upstream_conf": str(nginx / "http.d" / "upstream.conf")},
            "supervisor": {"conf": str(self.site().supervisord_conf)},
            "data": {"source_chroma": str(self.root / "data" / "source"), "target_chroma": str(self.root / "data" / "target")},
            "notify": {"url": self.url("notify"), "messages": str(self.root / "notify" / "messages.jsonl")},
            "runs": str(self.root / "runs"),
            "dataset": dataset_info,
        }


# network -------------------------------------------------------------------

def _octet_free(octet: int) -> bool:
    subnet = f"{NET}.{octet}."
    routes = run(IP, "-o", "route", "show", "table", "all", check=False).stdout
    addrs = run(IP, "-o", "addr", "show", check=False).stdout
    return subnet not in routes and subnet not in addrs


def choose_octet(root: Path) -> int:
    """A third octet whose 10.231.O.0/24 nothing on this machine uses (start from the directory's hash).

    Chosen under the lock of the shared ledger (lab/ports.py), so two labs made at the same moment
    (parallel pytest workers) never get the same subnet before either has added its address.
    """
    start = int(hashlib.sha1(str(root).encode()).hexdigest()[6:10], 16)

    def pick(taken: set[int]) -> list[int]:
        for step in range(230):
            octet = 20 + (start + step) % 230
            if octet not in taken and _octet_free(octet):
                return [octet]
        raise LabError(f"no free /24 left in {NET}.20-249.0/24 for the lab in {root}")

    return ports.reserve_keys("octet", pick)[0]


def existing_namespaces(prefix: str) -> list[str]:
    out = run(IP, "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.split() and line.split()[0].startswith(prefix + "-")]


def network_ready(topo: Topology) -> bool:
    have = set(existing_namespaces(topo.prefix))
    link = run(IP, "-o", "addr", "show", "dev", topo.gw_link, check=False)
    return set(topo.namespaces) <= have and f"{topo.gateway}/24" in link.stdout


def create_network(topo: Topology, say: Say) -> None:
    """The switch namespace with a bridge, the controller's link, one namespace per host."""
    remove_network(topo, say)
    sw = topo.switch
    run(IP, "netns", "add", sw)
    run(IP, "-n", sw, "link", "set", "lo", "up")
    run(IP, "-n", sw, "link", "add", "br0", "type", "bridge")
    run(IP, "-n", sw, "link", "set", "br0", "up")
    run(IP, "link", "add", topo.gw_link, "type", "veth", "peer", "name", "gw", "netns", sw)
    run(IP, "-n", sw, "link", "set", "gw", "master", "br0", "up")
    run(IP, "addr", "add", f"{topo.gateway}/24", "dev", topo.gw_link)
    run(IP, "link", "set", topo.gw_link, "up")
    for host, (octet, short, _) in HOSTS.items():
        ns = topo.netns(host)
        run(IP, "netns", "add", ns)
        run(IP, "-n", ns, "link", "set", "lo", "up")
        run(IP, "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", short, "netns", sw)
        run(IP, "-n", ns, "addr", "add", f"{topo.address(host)}/24", "dev", "eth0")
        run(IP, "-n", ns, "link", "set", "eth0", "up")
        run(IP, "-n", sw, "link", "set", short, "master", "br0", "up")
    say(f"network {NET}.{topo.octet}.0/24: {', '.join(f'{h} {topo.address(h)}' for h in HOSTS)}; "
        f"controller {topo.gateway} on {topo.gw_link}")


def remove_network(topo: Topology, say: Say) -> list[str]:
    """Delete this lab's namespaces and link (only names with its prefix); returns what was removed."""
    removed = []
    for ns in existing_namespaces(topo.prefix):
        run(IP, "netns", "del", ns, check=False)
        removed.append(ns)
    if run(IP, "link", "show", topo.gw_link, check=False).returncode == 0:
        run(IP, "link", "del", topo.gw_link, check=False)
        removed.append(topo.gw_link)
    if removed:
        say(f"removed {', '.join(removed)}")
    return removed


def set_link(topo: Topology, host: str, state: str) -> None:
    """Take a host's switch port down (it becomes unreachable) or up again."""
    if host not in HOSTS or state not in ("up", "down"):
        raise LabError(f"link: expected one of {', '.join(HOSTS)} and up|down, got {host} {state}")
    run(IP, "-n", topo.switch, "link", "set", HOSTS[host][1], state)


# files ---------------------------------------------------------------------

def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class _NginxLayout:
    """What nginx.conf.j2 reads, for the proxy host."""

    root: Path
    port_base: int
    nginx_prefix: Path

    def __getattr__(self, name: str) -> Path:
        paths = {"nginx_conf": "nginx.conf", "nginx_pidfile": "nginx.pid", "nginx_logs": "logs", "nginx_tmp": "tmp",
                 "http_d": "http.d", "server_d": "server.d"}
        if name in paths:
            return self.nginx_prefix / paths[name]
        raise AttributeError(name)


def _ssh_keys(topo: Topology) -> None:
    topo.ssh_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(topo.ssh_dir, 0o700)
    if not topo.key.exists():
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"chroma-lab {topo.prefix}", "-f", str(topo.key))
    write_if_changed(topo.ssh_dir / "authorized_keys", topo.key.with_suffix(".pub").read_text())
    lines = []
    for host in HOSTS:
        key = topo.host_dir(host) / "ssh_host_ed25519_key"
        if not key.exists():
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host, "-f", str(key))
        kind, blob = key.with_suffix(".pub").read_text().split()[:2]
        lines.append(f"{topo.address(host)} {kind} {blob}")
    write_if_changed(topo.known_hosts, "\n".join(lines) + "\n")


def _sshd_config(topo: Topology, host: str) -> str:
    d = topo.host_dir(host)
    return "\n".join([
        f"# sshd of lab host {host} (namespace {topo.netns(host)}); rendered by lab/netns.py",
        f"ListenAddress {topo.address(host)}:22",
        f"HostKey {d / 'ssh_host_ed25519_key'}",
        f"PidFile {d / 'sshd.pid'}",
        f"AuthorizedKeysFile {topo.ssh_dir / 'authorized_keys'}",
        f"AllowUsers {getpass.getuser()}",
        "PermitRootLogin prohibit-password", "PubkeyAuthentication yes", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "UseDNS no", "X11Forwarding no",
        "PrintMotd no", "MaxSessions 50", "MaxStartups 50:30:100", "LogLevel VERBOSE",
        "Subsystem sftp internal-sftp", "",
    ])


def _supervisord_conf(site: Site, programs: dict[str, str], extra: str = "") -> str:
    text = _env().get_template("supervisord.conf.j2").render(layout=site, repo=REPO, programs=programs)
    return text + extra


def render(topo: Topology, bin_dir: Path) -> list[Path]:
    """Every file of the lab (configs rendered each time; app.env and upstream.conf only when missing)."""
    written: list[Path] = []
    dirs = [topo.root, topo.root / "logs", topo.root / "runs", topo.root / "notify", topo.root / "data" / "source",
            topo.root / "data" / "target", topo.nginx_dir() / "logs", topo.nginx_dir() / "tmp",
            topo.nginx_dir() / "http.d", topo.nginx_dir() / "server.d"]
    dirs += [topo.host_dir(h) / "logs" for h in HOSTS]
    for directory in dirs:
        directory.mkdir(parents=True, exist_ok=True)
    _ssh_keys(topo)
    chroma = bin_dir / "chroma"
    controller = {
        "source_chroma": f"{chroma} run --path {topo.root / 'data' / 'source'} --host {topo.gateway} "
                         f"--port {topo.port_base + 1}",
        "target_chroma": f"{chroma} run --path {topo.root / 'data' / 'target'} --host {topo.gateway} "
                         f"--port {topo.port_base + 2}",
        "notify_receiver": f"{bin_dir / 'python'} -m lab.webhook_receiver --host 127.0.0.1 --port {topo.port_base + 3} "
                           f"--log {topo.root / 'notify' / 'messages.jsonl'}",
    }
    files: dict[Path, str] = {topo.site().supervisord_conf: _supervisord_conf(topo.site(), controller)}
    ngx = _NginxLayout(topo.host_dir("lab_proxy"), topo.port_base, topo.nginx_dir())
    user = "root" if os.geteuid() == 0 else None
    files[ngx.nginx_conf] = _env().get_template("nginx.conf.j2").render(
        layout=ngx, user=user, listen=f"{topo.address('lab_proxy')}:{FRONT_DOOR_PORT}")
    for host, (_, _, program) in HOSTS.items():
        files[topo.host_dir(host) / "sshd_config"] = _sshd_config(topo, host)
        if program == "nginx":
            command = f'{NGINX} -c {ngx.nginx_conf} -p {ngx.nginx_prefix}/ -e {ngx.nginx_logs}/error.log -g "daemon off;"'
        else:
            command = (f"{bin_dir / 'python'} -m lab.demo_app --name {program} --config {topo.app_env(program)} "
                       f"--style {APP_STYLES[program]} --host {topo.address(host)} --port {APP_PORT}")
        files[topo.site(host).supervisord_conf] = _supervisord_conf(topo.site(host), {program: command})
    for path, content in files.items():
        if write_if_changed(path, content):
            written.append(path)
    upstream = ngx.http_d / "upstream.conf"
    if write_if_missing(upstream, "# The front door's backend (a cutover may point it elsewhere).\n"
                                  f"upstream chroma_front {{ server {topo.gateway}:{topo.port_base + 1}; }}\n"):
        written.append(upstream)
    for app, style in APP_STYLES.items():
        head = (f"# {app} on lab host {app} ({topo.address(app)}): its Chroma settings, read once at start-up.\n"
                f"# Restart: supervisorctl -c {topo.site(app).supervisord_conf} restart {app}\n")
        if write_if_missing(topo.app_env(app), head + app_settings_lines(style, topo.address("lab_proxy"),
                                                                          FRONT_DOOR_PORT)):
            written.append(topo.app_env(app))
    return written


# processes -----------------------------------------------------------------

def _alive_with(pidfile: Path, marker: str) -> Optional[psutil.Process]:
    try:
        proc = psutil.Process(int(pidfile.read_text().strip()))
        if proc.status() != psutil.STATUS_ZOMBIE and marker in " ".join(proc.cmdline()):
            return proc
    except (OSError, ValueError, psutil.Error):
        pass
    return None


def _in_netns(netns: Optional[str], argv: list[str]) -> list[str]:
    return [IP, "netns", "exec", netns, *argv] if netns else argv


def start_site(site: Site, bin_dir: Path, say: Say, label: str) -> None:
    if supervisord_process(site) is not None:
        return
    site.supervisor_socket.unlink(missing_ok=True)
    run(*_in_netns(site.netns, [str(bin_dir / "supervisord"), "-c", str(site.supervisord_conf)]))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if supervisord_process(site) is not None and site.supervisor_socket.exists():
            try:
                supervisor_rpc(site).supervisor.getState()
                say(f"started supervisord of {label}")
                return
            except OSError:
                pass
        time.sleep(0.1)
    raise LabError(f"supervisord of {label} did not come up; see {site.logs}/supervisord.log")


def stop_site(site: Site, label: str, say: Say) -> None:
    proc = supervisord_process(site)
    if proc is None:
        return
    try:
        supervisor_rpc(site).supervisor.shutdown()
    except OSError:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except psutil.TimeoutExpired as exc:
        raise LabError(f"supervisord of {label} (pid {proc.pid}) did not stop") from exc
    say(f"stopped supervisord of {label} (pid {proc.pid})")


def start_sshd(topo: Topology, host: str, say: Say) -> None:
    conf = topo.host_dir(host) / "sshd_config"
    if _alive_with(topo.host_dir(host) / "sshd.pid", str(conf)):
        return
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    run(SSHD, "-t", "-f", str(conf))
    run(*_in_netns(topo.netns(host), [SSHD, "-f", str(conf), "-E", str(topo.host_dir(host) / "logs" / "sshd.log")]))
    say(f"started sshd of {host} on {topo.address(host)}:22")


def stop_sshd(topo: Topology, host: str, say: Say) -> None:
    """Stop the host's sshd and the sessions it started (ansible's persistent connections would
    otherwise outlive it as orphans)."""
    proc = _alive_with(topo.host_dir(host) / "sshd.pid", str(topo.host_dir(host) / "sshd_config"))
    if proc is None:
        return
    try:
        sessions = proc.children(recursive=True)
    except psutil.Error:
        sessions = []
    for member in [proc, *sessions]:
        try:
            member.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs([proc, *sessions], timeout=10)
    for member in alive:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            pass
    say(f"stopped sshd of {host} (pid {proc.pid}) and its {len(sessions)} session process(es)")


# health --------------------------------------------------------------------

def _get(url: str, timeout: float = 5.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError):
        return 0, None


def probes(topo: Topology) -> dict[str, tuple[bool, str]]:
    """Health of every endpoint, from the controller."""
    found: dict[str, tuple[bool, str]] = {}
    for name, url in (("source_chroma", topo.url("source")), ("target_chroma", topo.url("target")),
                      ("front_door", topo.url("front_door"))):
        status, _ = _get(url + "/api/v2/heartbeat")
        found[name] = (status == 200, f"{url} heartbeat {status or 'down'}")
    status, _ = _get(topo.url("notify") + "/messages")
    found["notify_receiver"] = (status == 200, f"{topo.url('notify')} {status or 'down'}")
    for app in APP_STYLES:
        status, body = _get(topo.url(app) + "/health", timeout=15)
        ok = status == 200 and isinstance(body, dict) and bool(body.get("ok"))
        found[app] = (ok, f"{topo.url(app)} chroma_url={(body or {}).get('chroma_url')}" if ok else
                      f"{topo.url(app)} /health {status or 'down'}")
    for host in HOSTS:
        alive = _alive_with(topo.host_dir(host) / "sshd.pid", str(topo.host_dir(host) / "sshd_config")) is not None
        found[f"sshd@{host}"] = (alive, f"{topo.address(host)}:22 {'running' if alive else 'stopped'}")
    return found


def wait_healthy(topo: Topology, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        found = probes(topo)
        bad = {k: v[1] for k, v in found.items() if not v[0]}
        if not bad:
            return
        for label, site in [("controller", topo.site())] + [(h, topo.site(h)) for h in HOSTS]:
            for name, info in program_states(site).items():
                if info["statename"] == "FATAL":
                    raise LabError(f"program {name} of {label} is FATAL; see {site.logs}/{name}.log")
        if time.monotonic() > deadline:
            raise LabError(f"the multi-host lab in {topo.root} is not healthy: {bad}")
        time.sleep(0.3)


# up / down -----------------------------------------------------------------

def read_map(root: Path) -> dict[str, Any]:
    try:
        return json.loads((root / "lab.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def topology(root: Path | str, port_base: Optional[int] = None, choose: bool = False) -> Topology:
    """The topology of the lab in ``root`` (its octet from lab.json, or a free one when ``choose``)."""
    path = Path(root).expanduser().resolve()
    recorded = read_map(path)
    base = port_base if port_base is not None else int(recorded.get("port_base", 8000))
    if recorded.get("port_base") not in (None, base):
        raise LabError(f"the lab in {path} was made on port base {recorded['port_base']}, not {base}")
    octet = (recorded.get("network") or {}).get("subnet", "").split(".")[2:3]
    if octet:
        return Topology(path, base, int(octet[0]))
    if not choose:
        return Topology(path, base, 0)
    return Topology(path, base, choose_octet(path))


def _check_tools(bin_dir: Path) -> None:
    if os.geteuid() != 0:
        raise LabError("the multi-host lab creates network namespaces: run it as root")
    missing = [tool for tool in (SSHD, NGINX, IP, str(bin_dir / "supervisord"), str(bin_dir / "chroma"))
               if not Path(tool).exists()]
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        missing.append("ssh/ssh-keygen (openssh-client)")
    if missing:
        raise LabError(f"missing: {', '.join(missing)}; run `make lab-deps` (apt-get install openssh-server "
                       f"openssh-client iproute2 nginx) and `make venv`")


def expected_counts(info: dict[str, Any]) -> dict[str, int]:
    return {spec.name: dataset.scaled_count(spec, float(info["scale"])) for spec in dataset.SPECS}


REGISTRY_ENV = "CHROMA_LAB_NETNS_REGISTRY"


def register(root: Path) -> None:
    """Note the lab in the file named by $CHROMA_LAB_NETNS_REGISTRY (make test removes them all at exit)."""
    registry = os.environ.get(REGISTRY_ENV)
    if registry:
        with open(registry, "a", encoding="utf-8") as out:  # one locked append per lab (parallel workers)
            fcntl.flock(out, fcntl.LOCK_EX)
            out.write(f"{root}\n")


def cleanup_registered(registry: Path, say: Say = _say) -> int:
    """down() every lab listed in ``registry``; returns how many labs it held."""
    try:
        roots = sorted({line.strip() for line in registry.read_text(encoding="utf-8").splitlines() if line.strip()})
    except OSError:
        return 0
    for root in roots:
        try:
            down(root, say)
        except LabError as exc:
            say(f"cleanup of {root}: {exc}")
    return len(roots)


def up(root: Path | str, port_base: int, variant: str = "legacy", scale: float = 1.0,
       seed: int = dataset.DEFAULT_SEED, timeout: float = 120.0, say: Say = _say) -> Topology:
    bin_dir = venv_bin()
    _check_tools(bin_dir)
    topo = topology(root, port_base, choose=True)
    register(topo.root)
    if len(str(topo.site("app_openwebui").supervisor_socket)) > 100:
        raise LayoutError(f"--dir {topo.root} is too long for the hosts' unix sockets; use a shorter directory")
    topo.root.mkdir(parents=True, exist_ok=True)
    if not network_ready(topo):
        for host in HOSTS:  # processes of a half-made lab go with its network
            stop_site(topo.site(host), host, say)
            stop_sshd(topo, host, say)
        stop_site(topo.site(), "the controller", say)
        create_network(topo, say)
    for path in render(topo, bin_dir):
        say(f"wrote {path}")
    requested = {"variant": variant, "scale": scale, "seed": seed}
    recorded = read_map(topo.root).get("dataset") or {}
    write_if_changed(topo.root / "lab.json", json.dumps(topo.describe(recorded), indent=2) + "\n")
    start_site(topo.site(), bin_dir, say, "the controller")
    for host in HOSTS:
        start_sshd(topo, host, say)
        start_site(topo.site(host), bin_dir, say, host)
    say(f"waiting until everything answers (up to {timeout:.0f}s)")
    wait_healthy(topo, timeout)
    report = dataset.load(topo.url("source"), variant, scale, seed)
    held = requested if report.loaded or not recorded else recorded
    if report.loaded:
        say(f"source {topo.url('source')}: {report.summary()}")
    write_if_changed(topo.root / "lab.json",
                     json.dumps(topo.describe({**held, "counts": expected_counts(held)}), indent=2) + "\n")
    return topo


def down(root: Path | str, say: Say = _say, purge: bool = False) -> None:
    """Stop every process of the lab, remove its namespaces and link (also after a failed up)."""
    topo = topology(root)
    for host in HOSTS:
        try:
            stop_site(topo.site(host), host, say)
        finally:
            stop_sshd(topo, host, say)
    stop_site(topo.site(), "the controller", say)
    remove_network(topo, say)
    if purge and topo.root.exists():
        if not (topo.root / "lab.json").exists():
            raise LabError(f"{topo.root} holds no lab.json; not deleting it")
        shutil.rmtree(topo.root)
        say(f"deleted {topo.root}")


def status(root: Path | str) -> bool:
    topo = topology(root)
    rows = probes(topo)
    print(f"multi-host lab {topo.root} (port base {topo.port_base}, {NET}.{topo.octet}.0/24, prefix {topo.prefix})")
    for name, (ok, detail) in rows.items():
        print(f"  {name:<24} {'ok  ' if ok else 'DOWN'} {detail}")
    return all(ok for ok, _ in rows.values())


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.netns", description="Faults and clean-up of the multi-host lab.")
    parser.add_argument("action", choices=("link", "cleanup"))
    parser.add_argument("args", nargs="*", help="link: HOST up|down")
    parser.add_argument("--dir", default=str(REPO / ".lab-hosts"))
    parser.add_argument("--registry", type=Path, help=f"cleanup: every lab listed in this file (${REGISTRY_ENV})")
    args = parser.parse_args(argv)
    try:
        if args.action == "cleanup" and args.registry:
            count = cleanup_registered(args.registry)
            _say(f"cleaned up {count} multi-host lab(s) listed in {args.registry}")
            return 0
        if args.action == "link":
            if len(args.args) != 2:
                raise LabError("link needs HOST and up|down")
            set_link(topology(args.dir), args.args[0], args.args[1])
            _say(f"{args.args[0]}: link {args.args[1]}")
        else:
            down(args.dir)
        return 0
    except (LabError, LayoutError) as exc:
        print(f"lab: error: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
