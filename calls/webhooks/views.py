"""Webhook settings pages (/settings/webhooks/): the organization's admins
list, add, edit, delete and test endpoints, rotate secrets, read the
delivery log and redeliver. Other roles get 403; an endpoint of another
organization is a 404, as if it did not exist. Pages that show a secret are
never stored by a cache. Every action is a plain form POST; htmx swaps a
redelivered row in place where it is there."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from calls.tenancy.decorators import organization_required
from calls.tenancy.http import OrgRequest
from calls.tenancy.models import Membership
from calls.webhooks.events import send_test_event
from calls.webhooks.forms import MAX_ENDPOINTS, EndpointEditForm, EndpointForm
from calls.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from calls.webhooks.tasks import redeliver

DELIVERIES_SHOWN = 50


def organization_admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """organization_required, and the person is an admin of the current organization (else 403)."""

    @organization_required
    @wraps(view)
    def wrapper(request: OrgRequest, *args: object, **kwargs: object) -> HttpResponse:
        if request.membership is None or request.membership.role != Membership.Role.ADMIN:
            raise PermissionDenied("Only the organization's admins manage webhooks.")
        return view(request, *args, **kwargs)

    return wrapper


def _endpoint(request: OrgRequest, endpoint_id: int) -> WebhookEndpoint:
    return get_object_or_404(WebhookEndpoint.objects.for_org(request.organization), pk=endpoint_id)


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
@organization_admin_required
def endpoint_list(request: OrgRequest) -> HttpResponse:
    """The organization's endpoints, and the form that adds one (its secret is shown once, here)."""
    endpoints = WebhookEndpoint.objects.for_org(request.organization)
    form = EndpointForm(request.POST or None)
    created = new_secret = None
    status = 200
    if request.method == "POST":
        if endpoints.count() >= MAX_ENDPOINTS:
            form.add_error(None, f"An organization may have at most {MAX_ENDPOINTS} endpoints.")
        if form.is_valid():
            created, new_secret = WebhookEndpoint.create_with_secret(
                organization=request.organization,
                url=form.cleaned_data["url"],
                description=form.cleaned_data["description"],
                events=form.cleaned_data["events"],
            )
            form = EndpointForm()
        else:
            status = 400
    context = {"endpoints": endpoints, "form": form, "created": created, "new_secret": new_secret}
    return _no_store(render(request, "webhooks/list.html", context, status=status))


def _detail_context(endpoint: WebhookEndpoint) -> dict[str, object]:
    deliveries = (
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .select_related("event")
        .prefetch_related(Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("number")))
        .order_by("-created_at", "-id")[:DELIVERIES_SHOWN]
    )
    return {"endpoint": endpoint, "deliveries": deliveries, "deliveries_shown": DELIVERIES_SHOWN}


@require_GET
@organization_admin_required
def endpoint_detail(request: OrgRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    return render(request, "webhooks/detail.html", _detail_context(endpoint))


@require_http_methods(["GET", "POST"])
@organization_admin_required
def endpoint_edit(request: OrgRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    form = EndpointEditForm(request.POST or None, instance=endpoint, initial={"is_enabled": endpoint.is_enabled})
    if request.method == "POST":
        if form.is_valid():
            form.save()
            endpoint.set_enabled(form.cleaned_data["is_enabled"])
            messages.success(request, "Endpoint saved.")
            return redirect("webhooks:detail", endpoint.pk)
        return render(request, "webhooks/edit.html", {"endpoint": endpoint, "form": form}, status=400)
    return render(request, "webhooks/edit.html", {"endpoint": endpoint, "form": form})


@require_http_methods(["GET", "POST"])
@organization_admin_required
def endpoint_delete(request: OrgRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    if request.method == "POST":
        endpoint.delete()
        messages.success(request, f"Endpoint {endpoint.url} deleted with its delivery log.")
        return redirect("webhooks:list")
    return render(request, "webhooks/confirm_delete.html", {"endpoint": endpoint})


@require_POST
@organization_admin_required
def endpoint_rotate(request: OrgRequest, endpoint_id: int) -> HttpResponse:
    """A new signing secret, shown once on the page this answers with."""
    endpoint = _endpoint(request, endpoint_id)
    new_secret = endpoint.rotate_secret()
    context = _detail_context(endpoint) | {"new_secret": new_secret}
    return _no_store(render(request, "webhooks/detail.html", context))


@require_POST
@organization_admin_required
def endpoint_test(request: OrgRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    if send_test_event(endpoint):
        messages.success(request, "Test event queued: it appears in the delivery log below.")
    else:
        messages.error(request, "The endpoint is disabled: enable it to send a test event.")
    return redirect("webhooks:detail", endpoint.pk)


@require_POST
@organization_admin_required
def delivery_redeliver(request: OrgRequest, endpoint_id: int, delivery_id: int) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    found = get_object_or_404(
        WebhookDelivery.objects.select_related("event", "endpoint"), pk=delivery_id, endpoint=endpoint
    )
    queued = redeliver(found)
    if request.htmx:
        found.refresh_from_db()
        context = {"endpoint": endpoint, "delivery": found, "notice": "queued" if queued else "disabled"}
        return render(request, "webhooks/detail.html#delivery_row", context)
    if queued:
        messages.success(request, f"Delivery of {found.event.msg_id} queued again.")
    else:
        messages.error(request, "The endpoint is disabled: enable it to redeliver.")
    return redirect("webhooks:detail", endpoint.pk)
