"""The callers, objects and URL walk behind tests/test_access.py.

Every route of the URLconf is requested by each kind of caller a deployment
has: nobody, a manager of another organization, a rep, a manager, an
organization admin, a staff user who lacks the specific permission (a rep of
the organization with is_staff and no permissions), and a personal API token
of the manager (on page URLs it must be ignored, on /api/ it is the
credential; its client enforces CSRF like a browser would). Objects named in
URLs are real ones of the organization.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from calls.models import Call
from calls.tenancy.models import ApiToken, Membership
from calls.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from resilience.models import AlertRule, BreakerEvent, BreakerPolicy, ErrorGroup
from tests import factories

ROLES = ("anonymous", "other_org", "rep", "manager", "org_admin", "staff_no_perm", "token")


def row(*statuses: int) -> dict[str, int]:
    """One line of the access table: a status per role, in the order of ROLES."""
    assert len(statuses) == len(ROLES)
    return dict(zip(ROLES, statuses, strict=True))


def walk_routes(resolver: URLResolver | None = None, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    """(full route, pattern) for every view of the URLconf, admin included."""
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            yield from walk_routes(entry, prefix + str(entry.pattern))
        else:
            yield prefix + str(entry.pattern), entry


@dataclass
class World:
    clients: dict[str, Client]
    objects: dict[str, models.Model]
    call: Call
    manager_token: ApiToken
    ids: dict[str, int]  # the value of each <int:name> converter


def build_world() -> World:
    org = factories.make_organization(name="Acme Sales", slug="acme")
    other = factories.make_organization(name="Globex", slug="globex")
    manager = factories.make_membership(org, role=Membership.Role.MANAGER)
    rep = factories.make_membership(org, role=Membership.Role.REP)
    org_admin = factories.make_membership(org, role=Membership.Role.ADMIN)
    other_manager = factories.make_membership(other, role=Membership.Role.MANAGER)
    staff = factories.make_membership(org, user=factories.make_user(is_staff=True), role=Membership.Role.REP)
    call = factories.make_call(org, rep=rep.user, title="Acme renewal with Initech")
    factories.make_call(other, rep=other_manager.user, title="Globex secret expansion deal")
    transcript = factories.make_transcript(call)
    analysis = factories.make_analysis(call)
    token, raw_token = ApiToken.issue(user=manager.user, organization=org, name="CRM sync")
    # A documentation address: the SSRF guard refuses it before any connection.
    endpoint = WebhookEndpoint.objects.create(
        organization=org,
        url="https://203.0.113.7/hooks",
        description="CRM",
        events=["call.completed"],
        secret="whsec_x",
    )
    event = WebhookEvent.objects.create(organization=org, msg_id="msg_access", type="call.completed", body="{}")
    delivery = WebhookDelivery.objects.create(event=event, endpoint=endpoint, status=WebhookDelivery.Status.FAILED)
    error_group = ErrorGroup.objects.create(
        fingerprint="f" * 64, title="ValueError: boom", first_seen=timezone.now(), last_seen=timezone.now()
    )

    clients = {"anonymous": Client()}
    members = {
        "other_org": other_manager,
        "rep": rep,
        "manager": manager,
        "org_admin": org_admin,
        "staff_no_perm": staff,
    }
    for role, membership in members.items():
        clients[role] = Client()
        clients[role].force_login(membership.user)
    clients["token"] = Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {raw_token}"})
    objects: dict[str, models.Model] = {
        "calls.call": call,
        "calls.transcript": transcript,
        "calls.callanalysis": analysis,
        "calls.organization": org,
        "calls.membership": rep,
        "calls.apitoken": token,
        "auth.user": rep.user,
        "auth.group": Group.objects.create(name="Support"),
        "resilience.breakerpolicy": BreakerPolicy.objects.order_by("pk").first(),
        "resilience.errorgroup": error_group,
        "resilience.alertrule": AlertRule.objects.order_by("pk").first(),
    }
    event = BreakerEvent.objects.order_by("pk").first()
    if event is not None:
        objects["resilience.breakerevent"] = event
    ids = {"call_id": call.pk, "token_id": token.pk, "endpoint_id": endpoint.pk, "delivery_id": delivery.pk}
    ids["group_id"] = error_group.pk
    return World(clients=clients, objects=objects, call=call, manager_token=token, ids=ids)


ADMIN_MODEL_ROUTE = re.compile(r"^admin/(?P<app>\w+)/(?P<model>\w+)/")


def fill(route: str, world: World) -> str:
    """The route with each converter replaced by a real value of the organization."""
    admin_model = ADMIN_MODEL_ROUTE.match(route)
    obj = world.objects.get(f"{admin_model['app']}.{admin_model['model']}") if admin_model else None
    object_pk = str(obj.pk) if obj is not None else "999999"
    replacements = {
        **{f"<int:{name}>": str(value) for name, value in world.ids.items()},
        "<path:content_type_id>": str(ContentType.objects.get_for_model(Call).pk),
        "<str:action>": "reset",
        "<id>": str(world.objects["auth.user"].pk),
        "(?P<url>.*)$": "no-such-page/",
    }
    for converter, value in replacements.items():
        route = route.replace(converter, value)
    route = re.sub(r"\(\?P<app_label>[^)]*\)", "calls", route)
    if admin_model is None:  # the admin's "view on site" redirect names the call
        route = route.replace("<path:object_id>", str(world.call.pk))
    route = re.sub(r"<(?:int|path):object_id>", object_pk, route)
    route = route.replace("^", "").replace("$", "")
    assert "<" not in route, f"no value for a converter in {route}"
    assert "(" not in route, f"no value for a group in {route}"
    return "/" + route
