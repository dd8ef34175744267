"""The calls app's cache wiring, connected from CallsConfig.ready(): which
tags its data changes bump, whose generation a change of rights bumps, and
who the cache is warmed as.

- Calls (and their transcript and analysis) bump `org:<organization id>` and
  `call:<call id>` after the commit; bulk changes bump the organization.
- Memberships bump their user's generation and organizations their tag (the
  name is on every page).
- A user's generation is bumped at sign-in and sign-out, and whenever the
  user row is saved (is_staff, is_superuser, is_active, ...) or their groups
  or permissions (or a group's permissions) change: cached pages show the
  Monitoring/Admin links by those rights. QuerySet.update() sends no signal:
  change rights through the model or the admin.
- Warming reads as each organization's members, most senior and most recently
  active first (the audience), and warms the dashboard's first page.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models import F
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.http import HttpRequest

from calls.cache_tags import call_tag, org_tag, selection_tag
from calls.events import calls_bulk_changed, in_bulk_operation
from calls.models import Call, CallAnalysis, Transcript
from calls.selection import selection_changed
from calls.tenancy.middleware import ORGANIZATION_SESSION_KEY
from calls.tenancy.models import Membership, Organization
from resilience.cache import invalidate_tags, invalidate_user, user_tag
from resilience.cache.warming import UnknownScope, WarmAs, register_audience, register_warmable

# Bumping a million call tags in one go would be a long Lua call; past this a
# bulk change bumps the organization tag, which every calls view carries.
MAX_CALL_TAGS_PER_BULK_CHANGE = 5000


def call_changed(sender: type, instance: Call, **kwargs: object) -> None:
    if in_bulk_operation():
        return  # announced once by the bulk operation
    invalidate_tags(org_tag(instance.organization_id), call_tag(instance.pk))


def call_part_changed(sender: type, instance: Transcript | CallAnalysis, **kwargs: object) -> None:
    if in_bulk_operation():
        return  # announced once by the bulk operation
    # The call is usually cached on the instance; when it is not (a cascade
    # delete), one small query finds its organization.
    call = instance._state.fields_cache.get("call")
    organization_id = (
        call.organization_id
        if call is not None
        else Call.objects.filter(pk=instance.call_id).values_list("organization_id", flat=True).first()
    )
    tags = [call_tag(instance.call_id)]
    if organization_id is not None:
        tags.append(org_tag(organization_id))
    invalidate_tags(*tags)


def calls_bulk_change_received(
    sender: type, organization_id: int, call_ids: list[int] | None = None, **kwargs: object
) -> None:
    tags = [org_tag(organization_id)]
    if call_ids and len(call_ids) <= MAX_CALL_TAGS_PER_BULK_CHANGE:
        tags.extend(call_tag(pk) for pk in call_ids)
    invalidate_tags(*tags)


def selection_changed_received(sender: type, organization_id: int, user_id: int, **kwargs: object) -> None:
    # The calls table shows the person's selection; nothing else depends on it.
    invalidate_tags(selection_tag(organization_id, user_id), on_commit=False)


def membership_changed(sender: type, instance: Membership, **kwargs: object) -> None:
    # A role or a membership changes what a user may see.
    invalidate_tags(user_tag(instance.user_id))


def organization_changed(sender: type, instance: Organization, **kwargs: object) -> None:
    # Its name is on every page.
    invalidate_tags(org_tag(instance.pk))


def user_signed_in_or_out(sender: type, request: HttpRequest | None, user: object, **kwargs: object) -> None:
    if user is not None and getattr(user, "pk", None) is not None:
        # Not deferred to a commit: a sign-in changes no data readers could see early.
        invalidate_user(user.pk, on_commit=False)


def user_saved(sender: type, instance: Any, created: bool, **kwargs: object) -> None:
    if not created:
        invalidate_user(instance.pk)


def user_rights_changed(
    sender: type, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **kwargs: Any
) -> None:
    """User.groups / User.user_permissions changed, from either side."""
    if action == "pre_clear" and reverse:
        # group.user_set.clear(): the users are known only before the clear.
        instance._cache_users_cleared = list(instance.user_set.values_list("pk", flat=True))
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if not reverse:
        bump_users([instance.pk])
    elif action == "post_clear":
        bump_users(getattr(instance, "_cache_users_cleared", []))
    else:
        bump_users(pk_set or ())


def group_permissions_changed(sender: type, instance: Any, action: str, reverse: bool, **kwargs: Any) -> None:
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    groups = [instance] if not reverse else list(Group.objects.filter(pk__in=kwargs.get("pk_set") or ()))
    bump_users(get_user_model().objects.filter(groups__in=groups).values_list("pk", flat=True).distinct())


def bump_users(user_ids: Iterable[int]) -> None:
    """A new generation for each user, in one bump after the commit."""
    invalidate_tags(*(user_tag(pk) for pk in user_ids))


def members_to_warm(organization: Organization, max_users: int) -> list[Any]:
    memberships = (
        Membership.objects.filter(organization=organization, user__is_active=True)
        .select_related("user")
        .order_by(F("user__last_login").desc(nulls_last=True), "user_id")
    )
    order = {Membership.Role.ADMIN: 0, Membership.Role.MANAGER: 1, Membership.Role.REP: 2}
    ranked = sorted(memberships, key=lambda m: order.get(m.role, 3))
    return [m.user for m in ranked[:max_users]]


def organization_members(scope: str | None, max_users: int) -> list[WarmAs]:
    """The warming audience: a scope is an organization slug (None: all)."""
    organizations = Organization.objects.order_by("pk")
    if scope:
        organizations = organizations.filter(slug=scope)
        if not organizations.exists():
            raise UnknownScope(f"No organization with slug {scope!r}.")
    return [
        WarmAs(
            scope=organization.slug,
            who=user.get_username(),
            user=user,
            session=((ORGANIZATION_SESSION_KEY, organization.pk),),
        )
        for organization in organizations
        for user in members_to_warm(organization, max_users)
    ]


def register_warming() -> None:
    register_audience(organization_members)
    # The dashboard's first page in its default sort: full page and the rows partial.
    register_warmable("calls", "calls:list", htmx=True)


def connect() -> None:
    for model, receiver in ((Call, call_changed), (Transcript, call_part_changed), (CallAnalysis, call_part_changed)):
        post_save.connect(receiver, sender=model, dispatch_uid=f"cache-save-{model.__name__}")
        post_delete.connect(receiver, sender=model, dispatch_uid=f"cache-delete-{model.__name__}")
    for model, receiver in ((Membership, membership_changed), (Organization, organization_changed)):
        post_save.connect(receiver, sender=model, dispatch_uid=f"cache-save-{model.__name__}")
        post_delete.connect(receiver, sender=model, dispatch_uid=f"cache-delete-{model.__name__}")
    calls_bulk_changed.connect(calls_bulk_change_received, dispatch_uid="cache-bulk-change")
    selection_changed.connect(selection_changed_received, dispatch_uid="cache-selection-change")
    user_logged_in.connect(user_signed_in_or_out, dispatch_uid="cache-user-logged-in")
    user_logged_out.connect(user_signed_in_or_out, dispatch_uid="cache-user-logged-out")
    user_model = get_user_model()
    post_save.connect(user_saved, sender=user_model, dispatch_uid="cache-user-saved")
    for through in (user_model.groups.through, user_model.user_permissions.through):
        m2m_changed.connect(user_rights_changed, sender=through, dispatch_uid=f"cache-rights-{through.__name__}")
    m2m_changed.connect(group_permissions_changed, sender=Group.permissions.through, dispatch_uid="cache-group-perms")
    register_warming()
