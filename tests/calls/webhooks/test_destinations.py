"""SSRF: which webhook URLs are accepted when saved, and which addresses a
delivery refuses to connect to when it resolves the host."""

from __future__ import annotations

import socket
import ssl
import subprocess

import httpx
import pytest
from standardwebhooks import Webhook

from calls.webhooks import delivery as service
from calls.webhooks.destinations import DestinationRefused, check_url, check_url_and_host, destination
from calls.webhooks.events import emit_event
from calls.webhooks.models import WebhookAttempt, WebhookEndpoint
from tests.calls.webhooks.conftest import ALL_EVENTS
from tests.calls.webhooks.receiver import Receiver


def new_delivery(endpoint: WebhookEndpoint):
    return emit_event(endpoint.organization, "call.completed", {"call_id": 1}, endpoints=[endpoint]).deliveries.get()


@pytest.fixture
def production(settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = False


@pytest.mark.usefixtures("production")
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "https"),
        ("ftp://hooks.example.com/x", "https"),
        ("https://user:pass@hooks.example.com/x", "passwords"),
        ("https://token@hooks.example.com/x", "passwords"),
        ("https://127.0.0.1/x", "own address"),
        ("https://localhost:8000/x", "own address"),
        ("https://api.localhost/x", "own address"),
        ("https://[::1]/x", "own address"),
        ("https://[::ffff:127.0.0.1]/x", "own address"),
        ("https://10.1.2.3/x", "private"),
        ("https://192.168.0.10/x", "private"),
        ("https://172.16.5.5/x", "private"),
        ("https://169.254.169.254/latest/meta-data/", "private"),
        ("https://100.64.0.1/x", "private"),
        ("https://0.0.0.0/x", "private"),
        ("https://[fe80::1]/x", "private"),
        ("https://[fd00::1]/x", "private"),
        ("https://224.0.0.1/x", "private"),
        ("https:///x", "host"),
        # IPv6 forms that embed an IPv4 address (NAT64, IPv4-compatible, 6to4, Teredo) and site-local.
        ("https://[64:ff9b::10.0.0.5]/", "private"),
        ("https://[64:ff9b::169.254.169.254]/", "private"),
        ("https://[64:ff9b:1::a00:5]/", "private"),
        ("https://[::127.0.0.1]/", "private"),
        ("https://[::10.0.0.5]/", "private"),
        ("https://[2002:a00:5::]/", "private"),
        ("https://[2002:7f00:1::]/", "private"),
        ("https://[2001:0:4136:e378:8000:63bf:f5ff:fffa]/", "private"),
        ("https://[fec0::1]/", "private"),
    ],
)
def test_urls_that_could_reach_our_own_network_are_refused(url, reason):
    with pytest.raises(DestinationRefused, match=reason):
        check_url(url)


@pytest.mark.parametrize(
    "url",
    ["https://[::127.0.0.1]/", "https://[64:ff9b::127.0.0.1]/", "https://[2002:7f00:1::]/", "https://[fec0::1]/"],
)
def test_ipv6_forms_of_loopback_are_refused_even_where_loopback_is_allowed(settings, url):
    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    with pytest.raises(DestinationRefused):
        check_url(url)


@pytest.mark.usefixtures("production")
def test_a_public_ipv6_address_is_accepted():
    check_url("https://[2606:4700:4700::1111]/x")


@pytest.mark.usefixtures("production")
def test_a_public_https_url_is_accepted():
    check_url("https://8.8.8.8/hooks")
    check_url("https://hooks.example.com:8443/calliq?x=1")


def test_with_loopback_allowed_http_to_loopback_is_accepted_but_not_elsewhere(settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    check_url("http://127.0.0.1:9000/hooks")
    check_url("http://localhost:9000/hooks")
    with pytest.raises(DestinationRefused, match="https"):
        check_url("http://hooks.example.com/x")
    with pytest.raises(DestinationRefused, match="private"):
        check_url("https://10.0.0.1/x")


@pytest.fixture
def dns(monkeypatch):
    """The resolver's answers for made-up names (the machine has no DNS of its own)."""
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answers[host]]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


@pytest.mark.usefixtures("production")
def test_a_name_resolving_to_a_private_address_is_refused_on_save_and_at_delivery(dns):
    dns["crm.customer.example"] = ["93.184.216.34", "10.0.0.7"]
    with pytest.raises(DestinationRefused, match="resolves to a private"):
        check_url_and_host("https://crm.customer.example/hooks")
    with pytest.raises(DestinationRefused, match="resolves to a private"):
        destination("https://crm.customer.example/hooks")


@pytest.mark.usefixtures("production")
def test_numeric_spellings_of_loopback_are_caught_when_resolved():
    # glibc reads "2130706433" and "0x7f.1" as 127.0.0.1: the check is on the resolved address.
    for url in ("https://2130706433/x", "https://0x7f.1/x"):
        with pytest.raises(DestinationRefused, match="resolves to a private, loopback"):
            destination(url)


@pytest.mark.usefixtures("production")
def test_an_international_host_name_is_sent_as_idna(dns):
    dns["xn--bcher-kva.example"] = ["93.184.216.34"]
    target = destination("https://bücher.example/hooks")
    assert target.host_header == "xn--bcher-kva.example"
    assert target.sni_hostname == "xn--bcher-kva.example"


@pytest.mark.usefixtures("production")
def test_the_connection_goes_to_the_address_that_was_checked(dns):
    dns["crm.customer.example"] = ["93.184.216.34"]
    target = destination("https://crm.customer.example:8443/hooks?a=1")
    assert target.url == "https://93.184.216.34:8443/hooks?a=1"
    assert target.host_header == "crm.customer.example:8443"
    assert target.sni_hostname == "crm.customer.example"


def test_a_host_that_turns_private_after_it_was_saved_is_refused_at_delivery(org, receiver, dns, settings):
    """DNS rebinding: the name was public when the admin saved it; at delivery it points inside."""
    dns["crm.customer.example"] = ["93.184.216.34"]
    settings.WEBHOOKS_ALLOW_LOOPBACK = False
    check_url_and_host("https://crm.customer.example/hooks")
    endpoint, _ = WebhookEndpoint.create_with_secret(
        organization=org, url="https://crm.customer.example/hooks", description="", events=ALL_EVENTS
    )
    dns["crm.customer.example"] = ["127.0.0.1"]
    delivery = emit_event(org, "call.completed", {"call_id": 1}, endpoints=[endpoint]).deliveries.get()

    result = service.attempt_delivery(delivery.pk)

    assert result.outcome == "retrying"
    assert "resolves to a private, loopback" in WebhookAttempt.objects.get().error
    assert receiver.received == []


def test_a_loopback_endpoint_is_refused_at_delivery_once_loopback_is_no_longer_allowed(org, receiver, settings):
    endpoint, _ = WebhookEndpoint.create_with_secret(
        organization=org, url=receiver.url(), description="", events=ALL_EVENTS
    )
    settings.WEBHOOKS_ALLOW_LOOPBACK = False
    delivery = emit_event(org, "call.completed", {"call_id": 1}, endpoints=[endpoint]).deliveries.get()

    service.attempt_delivery(delivery.pk)

    assert receiver.received == []
    assert WebhookAttempt.objects.get().error == "Use an https:// URL."


def test_a_delivery_by_name_carries_the_name_in_the_host_header(org, receiver):
    endpoint, _ = WebhookEndpoint.create_with_secret(
        organization=org, url=f"http://localhost:{receiver.port}/named", description="", events=ALL_EVENTS
    )
    delivery = emit_event(org, "call.completed", {"call_id": 1}, endpoints=[endpoint]).deliveries.get()
    assert service.attempt_delivery(delivery.pk).outcome == "succeeded"
    assert receiver.received[0].headers["Host"] == f"localhost:{receiver.port}"


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for the name hooks.test."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=hooks.test", "-addext", "subjectAltName=DNS:hooks.test",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


def test_https_goes_to_the_checked_address_with_the_name_in_sni_and_the_certificate_checked(
    org, allow_loopback, dns, certificate
):
    cert, key = certificate
    server = Receiver()
    server.use_tls(cert, key)
    server.start()
    try:
        dns["hooks.test"] = ["127.0.0.1"]
        endpoint, secret = WebhookEndpoint.create_with_secret(
            organization=org, url=f"https://hooks.test:{server.port}/in", description="", events=ALL_EVENTS
        )
        trusted = ssl.create_default_context(cafile=cert)
        with httpx.Client(verify=trusted, follow_redirects=False, trust_env=False) as client:
            ok = service.attempt_delivery(new_delivery(endpoint).pk, client=client)
        with httpx.Client(follow_redirects=False, trust_env=False) as client:  # the system's CAs only
            untrusted = service.attempt_delivery(new_delivery(endpoint).pk, client=client)
    finally:
        server.stop()

    assert ok.outcome == "succeeded"
    (request,) = server.received  # the untrusted certificate stopped the second one before any request
    assert request.headers["Host"] == f"hooks.test:{server.port}"
    Webhook(secret).verify(request.body, request.headers)
    assert untrusted.outcome == "retrying"
    assert "Could not connect" in WebhookAttempt.objects.filter(succeeded=False).get().error
