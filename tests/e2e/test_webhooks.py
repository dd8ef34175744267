"""An organization admin sets up a webhook endpoint in a real browser: adds it
(the secret shown once), sends a test event to a real receiver on loopback,
and redelivers it with the htmx button, which swaps the row in place."""

import pytest
from standardwebhooks import Webhook

from calls.tenancy.models import Membership
from calls.webhooks.models import WebhookEndpoint
from tests import factories
from tests.calls.webhooks.receiver import Receiver
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def receiver(settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    server = Receiver()
    server.start()
    yield server
    server.stop()


def test_an_admin_adds_an_endpoint_tests_it_and_redelivers_in_place(page, org, receiver):
    admin = factories.make_membership(org, role=Membership.Role.ADMIN)
    sign_in(page, admin.user.username)
    page.wait_for_url("**/calls/")
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("URL").fill(receiver.url())
    page.get_by_label("call.completed", exact=False).check()
    page.get_by_role("button", name="Add endpoint").click()

    secret = page.locator("code.token-value").inner_text().strip()
    endpoint = WebhookEndpoint.objects.get()
    assert secret == endpoint.secret

    page.get_by_role("link", name=receiver.url()).click()
    assert secret not in page.content()
    page.get_by_role("button", name="Send test event").click()
    page.get_by_text("Test event queued").wait_for()
    assert page.get_by_text("delivered").is_visible()
    assert len(receiver.received) == 1
    Webhook(secret).verify(receiver.received[0].body, receiver.received[0].headers)

    url_before = page.url
    page.get_by_role("button", name="Redeliver").click()
    page.get_by_text("Queued again.", exact=True).wait_for()
    assert page.url == url_before  # swapped in place, no navigation
    assert len(receiver.received) == 2
    assert receiver.received[0].headers["webhook-id"] == receiver.received[1].headers["webhook-id"]
    assert page.csp_violations == []
