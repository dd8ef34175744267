"""The anonymous endpoints' per-client limit (resilience/monitoring/ratelimit.py)
counts each client on its own, behind the proxy too: the client is the address
the proxy appended to X-Forwarded-For (resilience/clientip.py), never one the
client chose, and not the proxy's own REMOTE_ADDR shared by everyone."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from resilience.clientip import client_ip
from resilience.monitoring.ratelimit import allow, client_key

PROXY = "10.0.0.2"


def behind_proxy(forwarded: str):
    return RequestFactory().post("/csp-report", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded)


@pytest.fixture
def proxied(settings):
    settings.CALLIQ_BEHIND_PROXY = True


@pytest.mark.usefixtures("proxied")
def test_behind_the_proxy_each_client_has_its_own_bucket():
    one, two = behind_proxy("198.51.100.7"), behind_proxy("203.0.113.9")
    assert client_key(one) != client_key(two)
    assert [allow("test", one, limit=2) for _ in range(3)] == [True, True, False]
    # Another client behind the same proxy is not limited by the first one's requests.
    assert allow("test", two, limit=2)


@pytest.mark.usefixtures("proxied")
def test_behind_the_proxy_the_address_the_client_wrote_is_ignored():
    honest = behind_proxy("198.51.100.7")
    forged = behind_proxy("1.2.3.4, 198.51.100.7")
    assert client_key(forged) == client_key(honest)
    assert client_ip(forged) == "198.51.100.7"


def test_without_the_proxy_setting_x_forwarded_for_is_not_trusted(settings):
    settings.CALLIQ_BEHIND_PROXY = False
    assert client_key(behind_proxy("198.51.100.7")) == client_key(behind_proxy("203.0.113.9"))
    assert client_ip(behind_proxy("198.51.100.7")) == PROXY


def test_the_sign_in_throttle_uses_the_same_definition():
    from calls.tenancy import throttle

    assert throttle.client_ip is client_ip
