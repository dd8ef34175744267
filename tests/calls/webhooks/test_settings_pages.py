"""The webhook settings pages: organization admins only (other roles 403,
anonymous to sign-in), another organization's endpoints are 404, secrets
are shown once and never cached, and every action works as a plain form
POST (htmx swaps the redelivered row)."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from standardwebhooks import Webhook

from calls.tenancy.models import Membership
from calls.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from tests import factories
from tests.calls.webhooks.conftest import ALL_EVENTS

HTMX = {"HX-Request": "true"}


@pytest.fixture
def other_org_endpoint(other_org, receiver) -> WebhookEndpoint:
    endpoint, _ = WebhookEndpoint.create_with_secret(
        organization=other_org, url=receiver.url("/globex"), description="Globex CRM", events=ALL_EVENTS
    )
    return endpoint


def delivery_of(endpoint: WebhookEndpoint) -> WebhookDelivery:
    from calls.webhooks.events import emit_event

    return emit_event(endpoint.organization, "call.completed", {"call_id": 1}, endpoints=[endpoint]).deliveries.get()


def routes(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> list[tuple[str, str]]:
    """Every webhook route, with the method that does something."""
    return [
        ("get", reverse("webhooks:list")),
        ("post", reverse("webhooks:list")),
        ("get", reverse("webhooks:detail", args=[endpoint.pk])),
        ("get", reverse("webhooks:edit", args=[endpoint.pk])),
        ("post", reverse("webhooks:edit", args=[endpoint.pk])),
        ("get", reverse("webhooks:delete", args=[endpoint.pk])),
        ("post", reverse("webhooks:delete", args=[endpoint.pk])),
        ("post", reverse("webhooks:rotate", args=[endpoint.pk])),
        ("post", reverse("webhooks:test", args=[endpoint.pk])),
        ("post", reverse("webhooks:redeliver", args=[endpoint.pk, delivery.pk])),
    ]


# --- Who may --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Membership.Role.REP, Membership.Role.MANAGER])
def test_reps_and_managers_get_403_on_every_webhook_route(client, org, endpoint, role):
    person = factories.make_membership(org, role=role)
    client.force_login(person.user)
    secret = endpoint.secret
    for method, url in routes(endpoint, delivery_of(endpoint)):
        response = getattr(client, method)(url, {"url": "https://8.8.8.8/x", "events": ALL_EVENTS})
        assert response.status_code == 403, (method, url)
        assert secret not in response.text
    endpoint.refresh_from_db()
    assert endpoint.secret == secret
    assert WebhookEndpoint.objects.count() == 1


def test_anonymous_people_are_sent_to_sign_in(client, endpoint):
    for method, url in routes(endpoint, delivery_of(endpoint)):
        response = getattr(client, method)(url)
        assert response.status_code == 302, (method, url)
        assert response["Location"].startswith(reverse("login"))


def test_staff_without_a_membership_are_refused(client, staff_user, endpoint):
    client.force_login(staff_user)
    for method, url in routes(endpoint, delivery_of(endpoint)):
        assert getattr(client, method)(url).status_code == 403, (method, url)


def test_an_admin_of_another_organization_gets_404_for_its_endpoints(
    client, admin, other_org_endpoint, receiver, other_org
):
    client.force_login(admin.user)
    delivery = delivery_of(other_org_endpoint)
    secret = other_org_endpoint.secret
    for method, url in routes(other_org_endpoint, delivery)[2:]:
        response = getattr(client, method)(url, {"url": "https://8.8.8.8/x", "events": ALL_EVENTS})
        assert response.status_code == 404, (method, url)
        assert secret not in response.text
    listing = client.get(reverse("webhooks:list"))
    assert "Globex CRM" not in listing.text
    assert other_org_endpoint.url not in listing.text
    other_org_endpoint.refresh_from_db()
    assert other_org_endpoint.secret == secret
    assert receiver.received == []  # no test event, no redelivery


def test_a_delivery_of_another_endpoint_cannot_be_redelivered_through_ones_own(
    client, admin, endpoint, other_org_endpoint, receiver
):
    client.force_login(admin.user)
    foreign = delivery_of(other_org_endpoint)
    response = client.post(reverse("webhooks:redeliver", args=[endpoint.pk, foreign.pk]))
    assert response.status_code == 404
    assert receiver.received == []


def test_only_admins_see_the_webhooks_link(client, org, admin):
    client.force_login(admin.user)
    assert reverse("webhooks:list") in client.get(reverse("tokens")).text
    manager = factories.make_membership(org, role=Membership.Role.MANAGER)
    client.force_login(manager.user)
    assert reverse("webhooks:list") not in client.get(reverse("tokens")).text


# --- What an admin does ------------------------------------------------------------------------


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(client, admin, receiver):
    client.force_login(admin.user)
    response = client.post(
        reverse("webhooks:list"),
        {"url": receiver.url(), "description": "HubSpot", "events": ["call.completed", "call.failed"]},
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.organization == admin.organization
    assert endpoint.events == ["call.completed", "call.failed"]
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.secret in response.text
    assert response["Cache-Control"] == "no-store"

    for page in (reverse("webhooks:list"), reverse("webhooks:detail", args=[endpoint.pk])):
        shown = client.get(page)
        assert shown.status_code == 200
        assert endpoint.secret not in shown.text
        assert endpoint.secret_hint in shown.text or page == reverse("webhooks:list")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.com/x", "Use an https:// URL."),
        ("https://user:secret@hooks.example.com/x", "Leave user names and passwords out of the URL"),
        ("https://169.254.169.254/latest/meta-data/", "private, link-local or reserved"),
        ("https://10.0.0.8/x", "private, link-local or reserved"),
        ("not a url", "Enter a valid URL."),
    ],
)
def test_a_bad_url_is_a_400_with_a_message_and_nothing_is_saved(client, admin, settings, url, message):
    settings.WEBHOOKS_ALLOW_LOOPBACK = False
    client.force_login(admin.user)
    response = client.post(reverse("webhooks:list"), {"url": url, "events": ["call.completed"]})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_an_endpoint_needs_at_least_one_event(client, admin):
    client.force_login(admin.user)
    response = client.post(reverse("webhooks:list"), {"url": "https://8.8.8.8/x"})
    assert response.status_code == 400
    assert "Choose at least one event to send." in response.text


def test_an_admin_rotates_the_secret_and_sees_the_new_one_once(client, admin, endpoint_and_secret):
    endpoint, old = endpoint_and_secret
    client.force_login(admin.user)
    response = client.post(reverse("webhooks:rotate", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert response.status_code == 200
    assert endpoint.secret != old
    assert endpoint.previous_secret == old
    assert endpoint.secret in response.text
    assert old not in response.text
    assert response["Cache-Control"] == "no-store"
    assert endpoint.secret not in client.get(reverse("webhooks:detail", args=[endpoint.pk])).text


def test_an_admin_disables_edits_and_enables_an_endpoint(client, admin, endpoint):
    client.force_login(admin.user)
    url = reverse("webhooks:edit", args=[endpoint.pk])
    response = client.post(url, {"url": endpoint.url, "description": "Renamed", "events": ["call.failed"]})
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.description, endpoint.events, endpoint.is_enabled) == ("Renamed", ["call.failed"], False)
    assert endpoint.disabled_reason == "Disabled by an admin."

    endpoint.consecutive_failures = 9
    endpoint.save()
    client.post(url, {"url": endpoint.url, "description": "Renamed", "events": ["call.failed"], "is_enabled": "on"})
    endpoint.refresh_from_db()
    assert endpoint.is_enabled
    assert (endpoint.consecutive_failures, endpoint.disabled_reason) == (0, "")


def test_an_admin_deletes_an_endpoint_after_confirming(client, admin, endpoint):
    delivery_of(endpoint)
    client.force_login(admin.user)
    url = reverse("webhooks:delete", args=[endpoint.pk])
    assert "cannot be undone" in client.get(url).text
    response = client.post(url)
    assert response.status_code == 302
    assert not WebhookEndpoint.objects.exists()
    assert not WebhookDelivery.objects.exists()


def test_a_test_event_reaches_the_endpoint_signed(
    client, admin, endpoint_and_secret, receiver, django_capture_on_commit_callbacks
):
    endpoint, secret = endpoint_and_secret
    client.force_login(admin.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("webhooks:test", args=[endpoint.pk]))
    assert response.status_code == 302
    (request,) = receiver.received
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["type"] == "webhook.test"
    page = client.get(reverse("webhooks:detail", args=[endpoint.pk]))
    assert "webhook.test" in page.text
    assert "delivered" in page.text


def test_the_delivery_log_shows_each_attempt(client, admin, endpoint, receiver):
    from calls.webhooks.delivery import attempt_delivery

    receiver.answer(503, b"maintenance window")
    attempt_delivery(delivery_of(endpoint).pk)
    client.force_login(admin.user)
    page = client.get(reverse("webhooks:detail", args=[endpoint.pk])).text
    assert "503" in page
    assert "maintenance window" in page
    assert " ms</td>" in page


def test_redeliver_without_javascript_redirects_and_sends_again(
    client, admin, endpoint, receiver, django_capture_on_commit_callbacks
):
    delivery = delivery_of(endpoint)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=WebhookDelivery.Status.FAILED)
    client.force_login(admin.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("webhooks:redeliver", args=[endpoint.pk, delivery.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("webhooks:detail", args=[endpoint.pk])
    assert any("queued again" in str(m) for m in get_messages(response.wsgi_request))
    assert len(receiver.received) == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED


def test_redeliver_with_htmx_answers_with_the_row(client, admin, endpoint, receiver):
    delivery = delivery_of(endpoint)
    client.force_login(admin.user)
    response = client.post(reverse("webhooks:redeliver", args=[endpoint.pk, delivery.pk]), headers=HTMX)
    assert response.status_code == 200
    assert response.text.strip().startswith(f'<tr id="delivery-{delivery.pk}"')
    assert "Queued again." in response.text
    assert "<html" not in response.text


def test_an_organization_may_not_have_endless_endpoints(client, admin, receiver):
    from calls.webhooks.forms import MAX_ENDPOINTS

    for n in range(MAX_ENDPOINTS):
        WebhookEndpoint.create_with_secret(
            organization=admin.organization, url=receiver.url(f"/{n}"), description="", events=ALL_EVENTS
        )
    client.force_login(admin.user)
    response = client.post(reverse("webhooks:list"), {"url": receiver.url("/more"), "events": ALL_EVENTS})
    assert response.status_code == 400
    assert WebhookEndpoint.objects.count() == MAX_ENDPOINTS
    assert not WebhookEvent.objects.exists()


def test_the_pages_carry_no_inline_code(client, admin, endpoint):
    from tests.calliq.test_security_headers import inline_code

    delivery_of(endpoint)
    client.force_login(admin.user)
    for name in ("webhooks:list", "webhooks:detail", "webhooks:edit", "webhooks:delete"):
        args = [] if name == "webhooks:list" else [endpoint.pk]
        response = client.get(reverse(name, args=args))
        assert response.status_code == 200
        assert inline_code(response.text) == [], name
