"""Every page runs under a strict Content-Security-Policy and carries no
inline script or style."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse


class InlineCodeFinder(HTMLParser):
    """Collects what a strict CSP would block: inline <script>, <style> and style="", on* handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        # JSON data islands (json_script) are never executed, so CSP allows them.
        if tag == "script" and "src" not in names and dict(attrs).get("type") != "application/json":
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style> element")
        if "style" in names:
            self.problems.append(f"style attribute on <{tag}>")
        self.problems += [f"{name} handler on <{tag}>" for name in names if name.startswith(("on", "hx-on"))]


def inline_code(html: str) -> list[str]:
    finder = InlineCodeFinder()
    finder.feed(html)
    return finder.problems


@pytest.mark.parametrize(
    "url_name", ["calls:list", "analytics:dashboard", "tokens", "monitoring:overview", "login", "admin:index"]
)
def test_pages_send_a_strict_csp_and_carry_no_inline_code(client, member, call, url_name):
    member.user.is_staff = member.user.is_superuser = True
    member.user.save()
    if url_name != "login":
        client.force_login(member.user)
    response = client.get(reverse(url_name))
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert inline_code(response.text) == []


def test_call_detail_carries_no_inline_code(client, member, call):
    client.force_login(member.user)
    assert inline_code(client.get(call.get_absolute_url()).text) == []


def test_pages_send_the_security_middleware_headers(client, db):
    response = client.get(reverse("login"))
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_htmx_is_configured_for_the_csp(client, db):
    html = client.get(reverse("login")).text
    assert '"allowEval": false' in html
    assert '"includeIndicatorStyles": false' in html
    assert "/static/django_htmx/htmx-2.min.js" in html
    assert "/static/js/csrf.js" in html


def test_the_monitoring_page_is_for_staff_only(client, member):
    client.force_login(member.user)
    response = client.get(reverse("monitoring:overview"))
    assert response.status_code == 302
    assert "/admin/login/" in response.url


def test_the_health_endpoint_reports_the_database_and_redis(client, db):
    body = client.get(reverse("monitoring:health")).json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True
