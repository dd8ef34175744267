"""axe-core (node_modules/axe-core, pinned in package.json) run in Chromium
on every page people use: no violation of WCAG 2.0-2.2 A/AA or axe's best
practices. The pages keep their strict CSP everywhere else; only this test's
browser context bypasses it, to inject axe."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.urls import URLResolver, get_resolver, reverse
from playwright.sync_api import Browser, Page

from calls.models import Call
from calls.tenancy.models import Membership
from calls.webhooks.models import WebhookEndpoint
from resilience.models import ErrorGroup
from resilience.monitoring.errors import capture_exception
from tests import factories
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

AXE = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


DESKTOP = {"width": 1366, "height": 900}
# Lighthouse's phone: layouts wrap, and targets end up closer together.
PHONE = {"width": 412, "height": 823}


def axe_context_page(browser: Browser, live_server, viewport: dict[str, int]) -> Iterator[Page]:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: install the npm packages (npm ci; make test does).")
    context = browser.new_context(base_url=live_server.url, viewport=viewport, bypass_csp=True)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def axe_page(browser: Browser, live_server) -> Iterator[Page]:
    yield from axe_context_page(browser, live_server, DESKTOP)


@pytest.fixture
def phone_page(browser: Browser, live_server) -> Iterator[Page]:
    yield from axe_context_page(browser, live_server, PHONE)


def violations(page: Page) -> list[str]:
    """axe's violations on the page as it is now, one readable line per rule and element."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})", TAGS
    )
    return [
        f"{page.url} {v['id']} ({v['impact']}): {node['target']} {node['failureSummary'][:200]}"
        for v in result["violations"]
        for node in v["nodes"]
    ]


def check(page: Page, path: str) -> list[str]:
    response = page.goto(path)
    assert response is not None
    assert response.status < 400, f"{path} answered {response.status}"
    page.wait_for_load_state("networkidle")
    return violations(page)


@pytest.fixture
def busy_org(settings, tmp_path, org, member):
    """An organization with analysed calls, a transcript and a recording, so every part of the pages shows."""
    settings.MEDIA_ROOT = tmp_path
    rep = factories.make_membership(org, role=Membership.Role.REP).user
    calls = [factories.make_call(org, rep=rep if n % 2 else member.user, score=40 + n * 5) for n in range(6)]
    factories.make_call(org, rep=rep, status=Call.Status.TRANSCRIBING, score=None, sentiment=None)
    detailed = calls[0]
    detailed.recording.save("call.wav", ContentFile(b"RIFF" + bytes(2000)))
    factories.make_transcript(detailed)
    factories.make_analysis(detailed)
    for call in calls[1:]:
        factories.make_analysis(call)
    return detailed


def test_the_pages_a_member_uses_have_no_accessibility_violations(axe_page, member, busy_org):
    sign_in(axe_page, member.user.username)
    axe_page.wait_for_url("**/calls/")
    found = []
    for path in [
        reverse("calls:list"),
        reverse("calls:list") + "?status=completed&score_min=40&sort=-score",
        busy_org.get_absolute_url(),
        reverse("calls:upload"),
        reverse("tokens"),
        reverse("billing:usage"),
        reverse("analytics:dashboard"),
        reverse("analytics:dashboard") + "?days=7&outcome=won",
        reverse("calls:search"),  # the empty search box
        reverse("calls:search") + "?q=pricing",  # results with highlighted turns
    ]:
        found += check(axe_page, path)
    assert "<mark>" in axe_page.content().lower()  # the search found the transcript
    assert found == [], json.dumps(found, indent=1)


def test_the_call_detail_while_playing_and_the_delete_confirmation_have_no_violations(axe_page, member, busy_org):
    sign_in(axe_page, member.user.username)
    axe_page.wait_for_url("**/calls/")
    found = check(axe_page, busy_org.get_absolute_url() + "?t=5")
    axe_page.locator("button.turn").first.evaluate("b => b.setAttribute('aria-current', 'true')")
    found += violations(axe_page)
    axe_page.goto(reverse("calls:list"))
    axe_page.locator("input[name=ids]").first.check()
    axe_page.wait_for_load_state("networkidle")
    found += violations(axe_page)
    found += check(axe_page, reverse("calls:bulk_delete") + "?next=/calls/")
    assert found == [], json.dumps(found, indent=1)


def test_pages_showing_errors_and_other_states_have_no_violations(axe_page, member, busy_org):
    sign_in(axe_page, member.user.username)
    axe_page.wait_for_url("**/calls/")
    found = []
    for path in [
        reverse("calls:list") + "?score_max=200&started_from=2026-02-30",  # field errors
        reverse("calls:list") + "?mode=scroll",  # infinite scroll
        reverse("analytics:dashboard") + "?from=2026-03-10&to=2026-03-01",  # a reversed range
        reverse("calls:search") + "?q=-pricing",  # nothing to look for
        reverse("calls:search") + "?q=pricing&score_min=500",  # a filter's error
        reverse("calls:search") + "?q=zebra",  # no result
    ]:
        response = axe_page.goto(path)
        assert response.status in (200, 400)
        found += violations(axe_page)
    axe_page.goto(reverse("calls:upload"))
    # Nothing filled in and the browser's own checks off: the server's errors show.
    axe_page.eval_on_selector("main form", "f => { f.noValidate = true; }")
    axe_page.click("main form button[type=submit]")
    axe_page.wait_for_load_state("networkidle")
    assert "This field is required" in axe_page.content()
    found += violations(axe_page)
    axe_page.goto(reverse("tokens"))
    axe_page.fill("#id_name", "CRM sync")
    axe_page.locator("#id_name").press("Enter")  # the new token is shown once
    axe_page.wait_for_load_state("networkidle")
    assert "ciq_" in axe_page.content()
    found += violations(axe_page)
    assert found == [], json.dumps(found, indent=1)


def test_the_page_for_someone_in_no_organization_has_no_violations(axe_page):
    outsider = factories.make_user()
    sign_in(axe_page, outsider.username)
    axe_page.wait_for_load_state("networkidle")
    assert "/calls/" in axe_page.url
    assert violations(axe_page) == []


def test_the_monitoring_pages_have_no_accessibility_violations(axe_page, staff_user, org):
    Membership.objects.create(user=staff_user, organization=org, role=Membership.Role.ADMIN)
    try:
        {}["missing"]
    except KeyError as exc:
        capture_exception(exc)
    group = ErrorGroup.objects.get()
    sign_in(axe_page, staff_user.username)
    axe_page.wait_for_url("**/calls/")
    found = []
    for path in [
        reverse("monitoring:overview"),
        reverse("monitoring:errors"),
        reverse("monitoring:error", args=[group.pk]),
        reverse("monitoring:rum"),
        reverse("monitoring:routes"),
        reverse("monitoring:slow"),
        reverse("monitoring:alerts"),
        reverse("monitoring:business"),
        reverse("analytics:business"),
    ]:
        found += check(axe_page, path)
    assert found == [], json.dumps(found, indent=1)


def test_the_webhook_pages_have_no_accessibility_violations(axe_page, org):
    admin = Membership.objects.create(user=factories.make_user(), organization=org, role=Membership.Role.ADMIN)
    endpoint, _ = WebhookEndpoint.create_with_secret(
        organization=org, url="https://hooks.example.com/calliq", description="CRM", events=["call.completed"]
    )
    sign_in(axe_page, admin.user.username)
    axe_page.wait_for_url("**/calls/")
    found = []
    for path in [
        reverse("webhooks:list"),
        reverse("webhooks:detail", args=[endpoint.pk]),
        reverse("webhooks:edit", args=[endpoint.pk]),
        reverse("webhooks:delete", args=[endpoint.pk]),
    ]:
        found += check(axe_page, path)
    assert found == [], json.dumps(found, indent=1)


def test_the_sign_in_and_signed_out_pages_have_no_accessibility_violations(axe_page, member):
    found = check(axe_page, reverse("login"))
    axe_page.fill("#id_username", member.user.username)
    axe_page.fill("#id_password", "wrong password")
    axe_page.click("button[type=submit]")
    axe_page.wait_for_load_state("networkidle")
    found += violations(axe_page)  # the form with its error
    sign_in(axe_page, member.user.username)
    axe_page.wait_for_url("**/calls/")
    axe_page.get_by_role("button", name="Sign out").click()
    axe_page.wait_for_load_state("networkidle")
    found += violations(axe_page)
    response = axe_page.goto("/calls/no-such-page/")
    assert response.status == 404
    found += violations(axe_page)
    assert found == [], json.dumps(found, indent=1)


def test_the_pages_on_a_phone_have_no_accessibility_violations(phone_page, member, busy_org, staff_user):
    Membership.objects.create(user=staff_user, organization=busy_org.organization, role=Membership.Role.ADMIN)
    sign_in(phone_page, member.user.username)
    phone_page.wait_for_url("**/calls/")
    found = []
    for path in [
        reverse("calls:list"),
        busy_org.get_absolute_url(),
        reverse("calls:upload"),
        reverse("tokens"),
        reverse("analytics:dashboard"),
        reverse("calls:search") + "?q=pricing",
    ]:
        found += check(phone_page, path)
    phone_page.context.clear_cookies()
    sign_in(phone_page, staff_user.username)
    phone_page.wait_for_url("**/calls/")
    for path in [
        reverse("monitoring:overview"),
        reverse("monitoring:errors"),  # no errors: the empty state
        reverse("monitoring:rum"),
        reverse("analytics:business"),
    ]:
        found += check(phone_page, path)
    assert found == [], json.dumps(found, indent=1)


# The routes whose pages the tests above open, and those that are no page a person reads.
CHECKED_PAGES = {
    "login",
    "logout",  # the signed-out page
    "tokens",
    "calls:list",
    "calls:upload",
    "calls:search",
    "calls:detail",
    "calls:bulk_delete",
    "analytics:dashboard",
    "analytics:business",
    "monitoring:overview",
    "monitoring:errors",
    "monitoring:error",
    "monitoring:rum",
    "monitoring:routes",
    "monitoring:slow",
    "monitoring:alerts",
    "monitoring:business",
    "webhooks:list",
    "webhooks:detail",
    "webhooks:edit",
    "webhooks:delete",
    "billing:usage",
}
NOT_PAGES = {
    "billing:paddle_webhook",  # Paddle's signed POST
    "metrics",  # Prometheus text
    "openapi",  # JSON
    "webhooks:rotate",  # POST actions that redirect
    "webhooks:test",
    "webhooks:redeliver",
    "home",  # a redirect to calls:list
    "token_revoke",
    "switch_organization",
    "calls:select",
    "calls:export",
    "calls:bulk_outcome",
    "calls:recording",  # audio
    "calls:recording_link",  # JSON
    "monitoring:health",
    "monitoring:rum-beacon",
    "monitoring:csp-report",
    "healthz",
    "readyz",
}


def route_names(patterns: list, namespace: str = "") -> Iterator[str]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from route_names(pattern.url_patterns, inner)
        elif pattern.name:
            yield namespace + pattern.name


def test_every_page_route_is_checked_by_axe():
    """A new page must join the checks above (or be named here as no page)."""
    names = {
        name
        for name in route_names(get_resolver().url_patterns)
        if not name.startswith("admin:") and "_api:" not in name  # Django's admin; the JSON API
    }
    assert names - CHECKED_PAGES - NOT_PAGES == set()
    assert CHECKED_PAGES - names == set()  # no stale names
