"""The client's address: the peer's, unless a proxy in TRUSTED_PROXIES forwarded the request
(then the nearest forwarded address that is not one of our proxies)."""

from __future__ import annotations

import pytest
from litestar import Request

from app.main import create_app
from app.security.web import client_ip
from app.settings import SettingsError
from tests.conftest import make_settings


def _ip(trusted: str, peer: str, **headers: str) -> str | None:
    app = create_app(make_settings(TRUSTED_PROXIES=trusted), app_url="postgresql://x@127.0.0.1/x")
    scope = {
        "type": "http", "method": "GET", "path": "/", "query_string": b"", "app": app,
        "litestar_app": app, "client": (peer, 50000),
        "headers": [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip
    return client_ip(Request(scope))  # type: ignore[arg-type]


def test_without_trusted_proxies_a_forwarding_header_is_ignored() -> None:
    assert _ip("", "10.0.0.5", x_forwarded_for="203.0.113.7") == "10.0.0.5"


def test_a_trusted_proxy_is_believed() -> None:
    assert _ip("10.0.0.5", "10.0.0.5", x_forwarded_for="203.0.113.7") == "203.0.113.7"


def test_the_nearest_untrusted_hop_is_the_client() -> None:
    """A client may write anything in the header; only what our proxies appended counts."""
    chain = "198.51.100.99, 203.0.113.7, 10.0.1.9"  # spoofed, real client, our inner proxy
    assert _ip("10.0.0.0/16", "10.0.0.5", x_forwarded_for=chain) == "203.0.113.7"


def test_a_request_from_elsewhere_cannot_claim_an_address() -> None:
    assert _ip("10.0.0.5", "192.0.2.50", x_forwarded_for="203.0.113.7") == "192.0.2.50"


def test_rfc_7239_forwarded_and_ipv6() -> None:
    forwarded = 'for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.1.9'
    assert _ip("10.0.0.0/8", "10.0.0.5", forwarded=forwarded) == "2001:db8:cafe::17"


def test_a_malformed_hop_believes_nothing_beyond_our_proxy() -> None:
    assert _ip("10.0.0.5", "10.0.0.5", x_forwarded_for="203.0.113.7, not-an-ip") == "10.0.0.5"


def test_a_bad_setting_is_refused_at_start() -> None:
    with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
        make_settings(TRUSTED_PROXIES="10.0.0.5,proxy.internal")
