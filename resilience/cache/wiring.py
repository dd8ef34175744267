"""Invalidation wiring: when calls change, their organization's and their own
tags are bumped (after the commit), and a user's generation is bumped at
sign-in and sign-out. Connected from ResilienceConfig.ready().

Memberships bump their user's generation and organizations their tag (the
name is on every page). Tag names are shared with the calls, analytics and dashboard views:
`org:<organization id>` and `call:<call id>`.
"""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest

from calls.events import calls_bulk_changed
from calls.models import Call, CallAnalysis, Transcript
from calls.selection import selection_changed
from calls.tenancy.models import Membership, Organization
from resilience.cache.service import invalidate_tags, user_tag

# Bumping a million call tags in one go would be a long Lua call; past this a
# bulk change bumps the organization tag, which every calls view carries.
MAX_CALL_TAGS_PER_BULK_CHANGE = 5000


def org_tag(organization_id: int) -> str:
    return f"org:{organization_id}"


def call_tag(call_id: int) -> str:
    return f"call:{call_id}"


def selection_tag(organization_id: int, user_id: int) -> str:
    return f"selection:{organization_id}:{user_id}"


def call_changed(sender: type, instance: Call, **kwargs: object) -> None:
    invalidate_tags(org_tag(instance.organization_id), call_tag(instance.pk))


def call_part_changed(sender: type, instance: Transcript | CallAnalysis, **kwargs: object) -> None:
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
        invalidate_tags(user_tag(user.pk), on_commit=False)


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
