"""A client over plain http loads no CA bundle (nothing is verified there); https keeps the caller's choice."""
from __future__ import annotations

import ssl

import pytest

from chroma_runbook.io.connection import connect, tls_verify


def test_tls_verify_only_matters_over_https() -> None:
    assert tls_verify(True, https=True) is True
    assert tls_verify(False, https=True) is False
    assert tls_verify(True, https=False) is False


def test_a_plain_http_client_loads_no_ca_bundle(chroma_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    server = chroma_factory("tls")
    loads: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    client = connect(server.connection)
    assert client.heartbeat() > 0 and client.list_collections() == []
    assert loads == [], "the client loaded a CA bundle for a plain http connection"
