"""Every page runs under a strict Content-Security-Policy (default-src 'none'),
carries no inline script or style, loads every script and stylesheet with
Subresource Integrity, and sends the cross-origin and cookie protections;
under CALLIQ_HTTPS=1 also HSTS for a year and Secure cookies."""

import base64
import hashlib
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.template import Context, Template
from django.test import Client, override_settings
from django.urls import reverse

from tests import factories

ROOT = Path(__file__).resolve().parents[2]
STRICT_CSP = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "connect-src": "'self'",
    "font-src": "'self'",
    "media-src": "'self'",  # the call detail's recording player
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
    # Violations are reported to the error tracker.
    "report-uri": "/monitoring/csp-report",
    "report-to": "csp",
}


def csp_directives(header: str) -> dict[str, str]:
    return {
        name: value.strip() for name, _, value in (d.strip().partition(" ") for d in header.split(";") if d.strip())
    }


def sha384(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


class AssetFinder(HTMLParser):
    """The scripts and stylesheets a page loads, with their integrity attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.assets.append((values["src"], values.get("integrity")))
        if tag == "link" and values.get("rel") == "stylesheet":
            self.assets.append((values["href"], values.get("integrity")))


def assets_of(html: str) -> list[tuple[str, str | None]]:
    finder = AssetFinder()
    finder.feed(html)
    return finder.assets


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
    assert csp_directives(csp) == STRICT_CSP
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


PAGES = ["calls:list", "calls:upload", "analytics:dashboard", "tokens", "monitoring:overview", "login"]


@pytest.mark.parametrize("url_name", PAGES)
def test_every_script_and_stylesheet_carries_the_integrity_of_the_file_served(client, member, call, url_name):
    member.user.is_staff = member.user.is_superuser = True
    member.user.save()
    if url_name != "login":
        client.force_login(member.user)
    assets = assets_of(client.get(reverse(url_name)).text)
    assert assets
    for url, integrity in assets:
        assert url.startswith("/static/"), url
        served = finders.find(url.removeprefix("/static/"))
        assert integrity == sha384(Path(served).read_bytes()), url


def test_the_call_detail_and_business_pages_load_their_assets_with_integrity(client, member, call):
    member.user.is_staff = member.user.is_superuser = True
    member.user.save()
    client.force_login(member.user)
    for url in [call.get_absolute_url(), reverse("analytics:business")]:
        assets = assets_of(client.get(url).text)
        assert assets
        assert all(integrity and integrity.startswith("sha384-") for _, integrity in assets), url


def test_no_template_includes_a_script_or_stylesheet_without_the_sri_tags():
    # A raw tag would load without integrity; {% script %} and {% stylesheet %} add it.
    raw = []
    for folder in [ROOT / "templates", *ROOT.glob("*/templates")]:
        for template in folder.rglob("*.html"):
            text = template.read_text()
            if "<script src=" in text or 'rel="stylesheet"' in text or "{% htmx_script %}" in text:
                raw.append(str(template.relative_to(ROOT)))
    assert raw == []


def test_pages_and_static_files_send_corp_and_coop(db):
    with override_settings(WHITENOISE_USE_FINDERS=True, WHITENOISE_AUTOREFRESH=True):
        client = Client()  # a new handler, so whitenoise reads the settings above
        for url in [reverse("login"), "/static/css/app.css"]:
            response = client.get(url)
            assert response.status_code == 200, url
            assert response["Cross-Origin-Resource-Policy"] == "same-origin"
            assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_collectstatic_writes_integrity_hashes_of_the_files_it_stores(tmp_path):
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "resilience.static.IntegrityManifestStorage"},
    }
    # Compression is whitenoise's business (and the slow part): skipped here.
    every_extension = {path.suffix.lstrip(".") for path in Path(finders.find("admin")).rglob("*.*")}
    every_extension |= {"css", "js", "svg", "json", "map", "txt", "md"}
    with override_settings(
        STATIC_ROOT=tmp_path, STORAGES=storages, WHITENOISE_SKIP_COMPRESS_EXTENSIONS=sorted(every_extension)
    ):
        call_command("collectstatic", "--noinput", verbosity=0)
        hashes = json.loads((tmp_path / "integrity.json").read_text())
        manifest = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
        for name in ["css/app.css", "js/app.js", "django_htmx/htmx-2.min.js"]:
            # The hash of the stored, hashed copy: the bytes a browser receives.
            assert hashes[name] == sha384((tmp_path / manifest[name]).read_bytes())
        html = Template("{% load sri %}{% stylesheet 'css/app.css' %}{% htmx_scripts %}").render(Context())
    assert f'href="/static/{manifest["css/app.css"]}" integrity="{hashes["css/app.css"]}"' in html
    assert (
        f'src="/static/{manifest["django_htmx/htmx-2.min.js"]}" integrity="{hashes["django_htmx/htmx-2.min.js"]}"'
        in html
    )


def test_the_session_and_csrf_cookies_are_samesite_and_the_session_cookie_httponly(client, member):
    from django.conf import settings

    client.get(reverse("login"))
    response = client.post(reverse("login"), {"username": member.user.username, "password": factories.PASSWORD})
    session = response.cookies.get(settings.SESSION_COOKIE_NAME) or client.cookies[settings.SESSION_COOKIE_NAME]
    assert session["httponly"]
    assert session["samesite"] == "Lax"
    csrf = client.cookies[settings.CSRF_COOKIE_NAME]
    assert csrf["samesite"] == "Lax"
    assert not csrf["httponly"]  # static/js/csrf.js reads it for htmx requests


HTTPS_PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
response = Client().get("/accounts/login/", secure=True, HTTP_HOST="calliq.example.com")
cookies = {name: {"secure": bool(m["secure"]), "httponly": bool(m["httponly"]), "samesite": m["samesite"]}
           for name, m in response.cookies.items()}
print(json.dumps({"status": response.status_code, "headers": dict(response.headers), "cookies": cookies,
    "session": [settings.SESSION_COOKIE_SECURE, settings.SESSION_COOKIE_HTTPONLY, settings.SESSION_COOKIE_SAMESITE],
    "insecure": Client().get("/accounts/login/", HTTP_HOST="calliq.example.com").status_code}))
"""


def test_under_calliq_https_every_production_header_and_cookie_flag_is_sent():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CALLIQ_"))}
    env |= {
        "DJANGO_SETTINGS_MODULE": "calliq.settings",
        "DJANGO_SECRET_KEY": "a-long-random-production-secret-" + "x" * 40,
        "DJANGO_DEBUG": "0",
        "DJANGO_ALLOWED_HOSTS": "calliq.example.com",
        "CALLIQ_HTTPS": "1",
        "CALLIQ_STATIC_MANIFEST": "0",
    }
    result = subprocess.run(
        [sys.executable, "-c", HTTPS_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    headers = {k.lower(): v for k, v in probe["headers"].items()}
    assert probe["status"] == 200
    assert probe["insecure"] == 301  # plain HTTP is redirected to HTTPS
    assert csp_directives(headers["content-security-policy"]) == STRICT_CSP
    hsts = dict(part.strip().partition("=")[::2] for part in headers["strict-transport-security"].split(";"))
    assert int(hsts["max-age"]) >= 365 * 24 * 3600
    assert "includeSubDomains" in hsts
    assert headers["cross-origin-resource-policy"] == "same-origin"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-frame-options"] == "DENY"
    csrf = probe["cookies"]["csrftoken"]
    assert csrf == {"secure": True, "httponly": False, "samesite": "Lax"}
    assert probe["session"] == [True, True, "Lax"]  # also the messages cookie's flags


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
