"""The lab for real: supervisord, two `chroma run`, nginx and the demo apps, in tmp dirs on free ports.

One lab per module (started with the real CLI, `python -m lab.labctl up`); the
tests run in file order and the last one takes it down.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import psutil
import pytest

from lab import dataset
from lab.dataset import CLASS_REGEX
from lab.chroma_server import free_port_base as shared_free_port_base, port_free
from lab.layout import PORT_SPAN, LabLayout
from lab.processes import nginx_process, program_states, supervisord_process

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
EXPECTED = {"openwebui_core": 3000, "openwebui_docs": 2100, "openwebui_functions": 1200,
            "openwebui_pipelines": 900, "openwebui_pain_points": 800, "openwebui_careers": 832}
COLLECTIONS_API = "/api/v2/tenants/default_tenant/databases/default_database/collections"


def free_port_base() -> int:
    """A base in 15000-24000 whose 12 ports are all free (clear of 8000/8200/8300 and of the ephemeral
    ports, 32768-60999, that client connections take)."""
    return shared_free_port_base(15000, 24000, PORT_SPAN)


def labctl(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab.labctl", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, check=False)


def ctl(layout: LabLayout, *args: str) -> str:
    done = subprocess.run([str(VENV_BIN / "supervisorctl"), "-c", str(layout.supervisord_conf), *args],
                          capture_output=True, text=True, timeout=60, check=False)
    return done.stdout + done.stderr


def http(url: str, body: Any = None, method: str | None = None, timeout: float = 30) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, _decode(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _decode(exc.read())


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode("utf-8", "replace")


def pids(layout: LabLayout) -> dict[str, int]:
    found = {name: info["pid"] for name, info in program_states(layout).items()}
    found["supervisord"] = supervisord_process(layout).pid
    found["nginx"] = nginx_process(layout).pid
    return found


def wait_for(predicate, timeout: float = 60, what: str = "condition") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:  # e.g. a restarted app that does not listen yet
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabLayout]:
    layout = LabLayout.create(tmp_path_factory.mktemp("lab"), free_port_base())
    try:
        done = labctl("up", "--dir", str(layout.root), "--port-base", str(layout.port_base))
        assert done.returncode == 0, done.stdout + done.stderr
        yield layout
    finally:
        labctl("down", "--dir", str(layout.root), "--port-base", str(layout.port_base))


def test_up_brings_everything_up_healthy_on_loopback(lab: LabLayout) -> None:
    done = labctl("status", "--dir", str(lab.root))
    assert done.returncode == 0, done.stdout
    for program in ("nginx", "source_chroma", "target_chroma", "app_openwebui", "app_chatbot"):
        assert re.search(rf"^{program}\s+{lab.port(program)}\s+\d+\s+(running|RUNNING)\s+ok", done.stdout, re.M)
    bound = {c.laddr.ip for c in psutil.net_connections("tcp")
             if c.status == psutil.CONN_LISTEN and c.laddr.port in lab.ports.values()}
    assert bound == {"127.0.0.1"}
    info = json.loads(lab.lab_json.read_text())
    assert info["port_base"] == lab.port_base and info["urls"]["front_door"] == lab.front_door_url
    assert info["ports"]["app_chatbot"] == lab.port_base + 11 and "pid" not in json.dumps(info["ports"])


def test_apps_see_the_dataset_through_the_front_door(lab: LabLayout) -> None:
    for app in ("app_openwebui", "app_chatbot"):
        status, health = http(lab.url(app) + "/health")
        assert status == 200 and health["ok"] is True and health["app"] == app
        assert health["chroma_url"] == lab.front_door_url
        assert {k: v for k, v in health["collections"].items() if k in EXPECTED} == EXPECTED
    assert http(lab.url("target_chroma") + COLLECTIONS_API)[1] == []


def test_rendered_files_follow_the_contract(lab: LabLayout) -> None:
    upstream = lab.upstream_conf.read_text()
    assert f"upstream chroma_front {{ server 127.0.0.1:{lab.port_base + 1}; }}" in upstream
    nginx_conf = lab.nginx_conf.read_text()
    assert "server.d/" in nginx_conf and "client_max_body_size 64m;" in nginx_conf
    assert f"listen 127.0.0.1:{lab.port_base};" in nginx_conf
    assert f"CHROMADB_URL={lab.front_door_url}\n" in lab.app_env("app_chatbot").read_text()
    assert f"CHROMA_HTTP_PORT={lab.port_base}\n" in lab.app_env("app_openwebui").read_text()


def test_search_for_a_personality_phrase_returns_personality_documents(lab: LabLayout) -> None:
    query = urllib.parse.urlencode({"q": "personality traits openness", "collection": "openwebui_core", "n": 5})
    status, body = http(f"{lab.url('app_openwebui')}/search?{query}")
    assert status == 200 and len(body["results"]) == 5
    personality = re.compile(CLASS_REGEX["personality"])
    assert all(personality.search(r["document"]) for r in body["results"]), body["results"]
    query = urllib.parse.urlencode({"q": "a funny joke"})
    status, body = http(f"{lab.url('app_chatbot')}/search?{query}")
    humor = re.compile(CLASS_REGEX["humor"])
    assert status == 200 and all(humor.search(r["document"]) for r in body["results"])
    assert http(f"{lab.url('app_chatbot')}/search?q=%3F%3F")[0] == 400


def test_remember_writes_through_the_front_door_and_passes_errors(lab: LabLayout) -> None:
    status, body = http(f"{lab.url('app_chatbot')}/remember", {"collection": "nope", "id": "m-1", "text": "hi there"})
    assert status == 404 and body["error"] == "NotFoundError"
    created = http(lab.url("source_chroma") + COLLECTIONS_API, {"name": "labtest_memory"}, "POST")
    assert created[0] == 200, created
    try:
        status, body = http(f"{lab.url('app_chatbot')}/remember",
                            {"collection": "labtest_memory", "id": "m-1", "text": "remember the pipeline"})
        assert (status, body["ok"]) == (201, True)
        status, health = http(lab.url("app_openwebui") + "/health")
        assert health["collections"]["labtest_memory"] == 1
    finally:
        http(f"{lab.url('source_chroma')}{COLLECTIONS_API}/labtest_memory", method="DELETE")


def test_front_door_passes_big_bodies_and_chroma_errors(lab: LabLayout) -> None:
    direct = http(f"{lab.url('source_chroma')}{COLLECTIONS_API}/nope")
    through = http(f"{lab.front_door_url}{COLLECTIONS_API}/nope")
    assert through == direct and through[0] == 404 and "error" in through[1]
    status, col = http(lab.front_door_url + COLLECTIONS_API, {"name": "labtest_bodies"}, "POST")
    assert status == 200
    try:
        n = 1500
        vectors = np.random.default_rng(1).random((n, 768)).round(6).tolist()
        body = {"ids": [f"b-{i}" for i in range(n)], "embeddings": vectors}
        assert len(json.dumps(body)) > 8 * 1024 * 1024  # far above nginx's default 1m limit
        status, _ = http(f"{lab.front_door_url}{COLLECTIONS_API}/{col['id']}/add", body, "POST", timeout=120)
        assert status in (200, 201)
        assert http(f"{lab.front_door_url}{COLLECTIONS_API}/{col['id']}/count")[1] == n
    finally:
        http(f"{lab.url('source_chroma')}{COLLECTIONS_API}/labtest_bodies", method="DELETE")


def reload_nginx(lab: LabLayout) -> None:
    """`nginx -s reload`, then wait until the old workers (which still accept for a moment) are gone."""
    old_workers = nginx_process(lab).children()
    subprocess.run(["/usr/sbin/nginx", "-s", "reload", "-c", str(lab.nginx_conf), "-p", f"{lab.nginx_prefix}/"],
                   check=True, capture_output=True, timeout=30)
    wait_for(lambda: not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in old_workers),
             30, "the old nginx workers to exit")


def test_server_d_snippets_apply_on_reload_and_apps_pass_refusals_through(lab: LabLayout) -> None:
    snippet = lab.server_d / "labtest.conf"
    url = f"{lab.front_door_url}/api/v2/heartbeat"
    snippet.write_text(
        "location ~ /add$ { default_type application/json;\n"
        "  return 423 '{\"error\": \"WritesFrozen\", \"message\": \"labtest freeze\"}'; }\n"
        "location = /api/v2/heartbeat { return 418; }\n")
    try:
        reload_nginx(lab)
        assert http(url)[0] == 418
        status, body = http(f"{lab.url('app_chatbot')}/remember",
                            {"collection": "openwebui_core", "id": "frozen-1", "text": "a write during the freeze"})
        assert (status, body) == (423, {"error": "WritesFrozen", "message": "labtest freeze"})
    finally:
        snippet.unlink()
        reload_nginx(lab)
    assert http(url)[0] == 200
    assert http(lab.url("app_chatbot") + "/health")[1]["collections"]["openwebui_core"] == 3000


def test_up_on_a_running_lab_changes_nothing(lab: LabLayout) -> None:
    before = pids(lab)
    conf_mtime = lab.supervisord_conf.stat().st_mtime_ns
    done = labctl("up", "--dir", str(lab.root))
    assert done.returncode == 0, done.stderr
    assert "started" not in done.stdout and "loaded" not in done.stdout
    assert pids(lab) == before
    assert lab.supervisord_conf.stat().st_mtime_ns == conf_mtime


def test_up_repairs_a_half_running_lab(lab: LabLayout) -> None:
    before = pids(lab)
    ctl(lab, "stop", "source_chroma", "app_chatbot")
    nginx_process(lab).terminate()
    wait_for(lambda: nginx_process(lab) is None, 20, "nginx to stop")
    status, health = http(lab.url("app_openwebui") + "/health")
    assert status == 503 and health["ok"] is False and health["error"]
    done = labctl("up", "--dir", str(lab.root))
    assert done.returncode == 0, done.stderr
    assert "started app_chatbot, source_chroma" in done.stdout and "started nginx" in done.stdout
    after = pids(lab)
    assert after["supervisord"] == before["supervisord"]
    assert after["target_chroma"] == before["target_chroma"] and after["app_openwebui"] == before["app_openwebui"]
    assert after["nginx"] != before["nginx"] and after["source_chroma"] != before["source_chroma"]
    assert http(lab.url("app_openwebui") + "/health")[1]["collections"]["openwebui_core"] == 3000


def test_up_after_supervisord_was_killed_replaces_its_orphans(lab: LabLayout) -> None:
    before = pids(lab)
    psutil.Process(before["supervisord"]).kill()  # SIGKILL: its programs live on without it
    wait_for(lambda: supervisord_process(lab) is None, 20, "supervisord to die")
    orphans = [psutil.Process(before[p]) for p in ("source_chroma", "target_chroma", "app_openwebui", "app_chatbot")]
    assert all(p.is_running() for p in orphans)
    done = labctl("up", "--dir", str(lab.root))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("stopped a leftover of this lab") == 4
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in orphans)
    after = pids(lab)
    assert after["supervisord"] != before["supervisord"] and after["nginx"] == before["nginx"]
    assert http(lab.url("app_openwebui") + "/health")[1]["collections"]["openwebui_core"] == 3000


def test_cutover_is_editing_app_env_and_restarting(lab: LabLayout) -> None:
    env = lab.app_env("app_chatbot")
    original = env.read_text()
    env.write_text(original.replace(lab.front_door_url, lab.url("target_chroma")))
    try:
        assert "app_chatbot: started" in ctl(lab, "restart", "app_chatbot")
        wait_for(lambda: http(lab.url("app_chatbot") + "/health")[0] == 200, 30, "app_chatbot health")
        status, health = http(lab.url("app_chatbot") + "/health")
        assert health["chroma_url"] == lab.url("target_chroma") and health["total"] == 0
        assert labctl("up", "--dir", str(lab.root)).returncode == 0
        assert lab.url("target_chroma") in env.read_text()  # up never overwrites an edited app.env
    finally:
        env.write_text(original)
        ctl(lab, "restart", "app_chatbot")
    wait_for(lambda: http(lab.url("app_chatbot") + "/health")[1].get("chroma_url") == lab.front_door_url,
             30, "app_chatbot back on the front door")


def test_an_app_that_cannot_start_is_named_with_its_log(lab: LabLayout) -> None:
    env = lab.app_env("app_chatbot")
    original = env.read_text()
    env.write_text("CHROMADB_URL=not-a-url\n")
    try:
        ctl(lab, "restart", "app_chatbot")
        done = labctl("up", "--dir", str(lab.root), "--timeout", "60")
        assert done.returncode == 2, done.stdout
        assert "program app_chatbot is FATAL" in done.stderr
        assert "CHROMADB_URL must look like http://host:port, got 'not-a-url'" in done.stderr
    finally:
        env.write_text(original)
    assert labctl("up", "--dir", str(lab.root)).returncode == 0
    assert http(lab.url("app_chatbot") + "/health")[1]["ok"] is True


def test_a_lab_dir_keeps_its_port_base_and_its_dataset(lab: LabLayout) -> None:
    other = str(lab.port_base + PORT_SPAN)
    done = labctl("up", "--dir", str(lab.root), "--port-base", other)
    assert done.returncode == 2
    assert f"runs on port base {lab.port_base}, not {other}" in done.stderr
    done = labctl("up", "--dir", str(lab.root), "--variant", "damaged")
    assert done.returncode == 0 and "the damaged dataset (scale 1.0, seed 42) not loaded" in done.stdout
    assert json.loads(lab.lab_json.read_text())["dataset"]["variant"] == "legacy"


def test_port_held_by_a_stranger_is_a_clear_error(tmp_path: Path) -> None:
    base = free_port_base()
    stranger = subprocess.Popen([sys.executable, "-m", "http.server", str(base + 2), "--bind", "127.0.0.1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: not port_free(base + 2), 10, "the stranger to listen")
        done = labctl("up", "--dir", str(tmp_path / "lab"), "--port-base", str(base))
        assert done.returncode == 2
        assert f"port {base + 2} (target_chroma) is held by pid {stranger.pid}" in done.stderr
        assert "http.server" in done.stderr
        assert not (tmp_path / "lab").exists()  # refused before anything was written or started
    finally:
        stranger.terminate()
        stranger.wait(timeout=10)


def test_bad_options_are_refused_before_anything_starts(tmp_path: Path) -> None:
    done = labctl("up", "--dir", str(tmp_path / "lab"), "--port-base", "80")
    assert done.returncode == 2 and "--port-base must be within 1024..65523, got 80" in done.stderr
    assert not (tmp_path / "lab").exists()


def test_zz_down_stops_everything(lab: LabLayout) -> None:
    running = [psutil.Process(pid) for pid in pids(lab).values()]
    done = labctl("down", "--dir", str(lab.root))
    assert done.returncode == 0, done.stderr
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in running)
    listening = [c for c in psutil.net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port in lab.ports.values()]
    assert listening == []
    assert labctl("status", "--dir", str(lab.root)).returncode == 1
    assert labctl("down", "--dir", str(lab.root)).returncode == 0  # down on a stopped lab is fine
    purged = labctl("down", "--purge", "--dir", str(lab.root))
    assert purged.returncode == 0 and f"deleted {lab.root}" in purged.stdout
    assert not lab.root.exists()


def test_dataset_cli_loads_any_server_once_with_collection_settings(chroma_factory) -> None:  # noqa: ANN001
    server = chroma_factory("dataset")
    cmd = [sys.executable, "-m", "lab.dataset", "--url", server.url, "--scale", "0.05", "--variant", "damaged"]
    first = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert first.returncode == 0, first.stderr
    assert "loaded 442 records into 6 collections" in first.stdout
    client = server.client()
    docs = client.get_collection("openwebui_docs")
    hnsw = docs.configuration_json["hnsw"]
    assert (hnsw["space"], hnsw["ef_construction"], hnsw["max_neighbors"]) == ("cosine", 200, 32)
    assert docs.metadata == {"owner": "openwebui", "description": "Documentation chunks"}
    spaces = {c.name: c.configuration_json["hnsw"]["space"] for c in client.list_collections()}
    assert spaces["openwebui_pain_points"] == "l2" and spaces["openwebui_careers"] == "ip"
    expected = dataset.generate_collection(dataset.SPEC_BY_NAME["openwebui_pain_points"], "damaged", 0.05)
    got = client.get_collection("openwebui_pain_points").get(include=["embeddings", "metadatas", "documents"])
    assert got["ids"] == expected.ids and got["documents"] == expected.documents
    assert np.array_equal(np.asarray(got["embeddings"], dtype=np.float32), expected.embeddings)
    assert got["metadatas"] == expected.metadatas
    core = client.get_collection("openwebui_core").get(include=["embeddings"])
    assert sum(not np.any(e) for e in core["embeddings"]) == round(150 * 0.10)
    second = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert second.returncode == 0 and "loaded 0 records" in second.stdout and "skipped 6 collections" in second.stdout
    bad = subprocess.run([sys.executable, "-m", "lab.dataset", "--url", server.url, "--variant", "nope"],
                         cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "invalid choice: 'nope'" in bad.stderr
