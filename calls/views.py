"""Calls pages: the dashboard table (full page, htmx fragments, infinite-scroll
chunks), the selection and its bulk actions, and call detail.

Every view state is in the URL; every page works as plain GET links and forms,
and htmx only swaps the same HTML in place. The list URL serves the page and
its fragments, so it varies on HX-Request, and a history restore gets the page.
The table shows the person's own selection: a cache in front of it must be
keyed per user.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpResponse, HttpResponseBadRequest, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from calls import selection as calls_selection
from calls.bulk import delete_selection, set_selection_outcome, split_selection
from calls.export import export_csv_lines
from calls.filters import FILTER_FIELDS, LISTING_PARAMS, PAGE_SIZES, Listing, Sort
from calls.forms import (
    MAX_UPLOAD_BODY,
    SORT_CHOICES,
    SORT_LABELS,
    BulkOutcomeForm,
    CallListForm,
    CallUploadForm,
    parse_listing,
)
from calls.keyset import BEFORE, InvalidCursor, decode_cursor
from calls.listen import listening_context
from calls.models import Call
from calls.selection import TablePage, table_page
from calls.tasks import start_pipeline
from calls.tenancy.decorators import organization_required
from calls.tenancy.http import OrgRequest
from calls.tenancy.models import Organization
from resilience.cache import cached_view
from resilience.uploads import upload_limit

# Infinite scroll keeps at most this many pages of rows in the DOM (static/js/calls.js).
WINDOW_PAGES = 5


def field_label(name: str) -> str:
    field = CallListForm.base_fields.get(name)
    return str(field.label) if field is not None and field.label else name.replace("_", " ").capitalize()


def rep_choices(organization: Organization) -> list[tuple[int, str]]:
    users = (
        get_user_model()
        .objects.filter(memberships__organization=organization)
        .order_by("first_name", "last_name", "pk")
        .values_list("pk", "first_name", "last_name", "username")
    )
    return [(pk, f"{first} {last}".strip() or username) for pk, first, last, username in users]


def table_links(path: str, table: TablePage) -> dict[str, Any]:
    """Every link of the table, built from the view state (cursor left out)."""
    listing, page = table.listing, table.page
    base = Listing(filters=listing.filters, sort=listing.sort, size=listing.size, mode=listing.mode)
    is_started = listing.sort.key == "started"
    newest_first = listing.sort.descending
    sorts = []
    for key, label in SORT_LABELS.items():
        active = listing.sort.key == key
        target = Sort(key, descending=not listing.sort.descending) if active else Sort(key, descending=True)
        sorts.append(
            {
                "key": key,
                "label": label,
                "url": base.url(path, sort=target),
                "aria": ("descending" if listing.sort.descending else "ascending") if active else "none",
                "active": active,
            }
        )
    return {
        "first": base.url(path),
        "last": base.url(path, cursor=page.last_cursor),
        "next": base.url(path, cursor=page.next_cursor) if page.next_cursor else None,
        "prev": base.url(path, cursor=page.prev_cursor) if page.prev_cursor else None,
        "next_chunk": base.url(path, cursor=page.next_cursor) + "&fragment=chunk" if page.next_cursor else None,
        "prev_chunk": base.url(path, cursor=page.prev_cursor) + "&fragment=chunk" if page.prev_cursor else None,
        "here": base.url(path, cursor=listing.cursor) if listing.cursor and not page.notice else base.url(path),
        "first_label": ("Newest" if newest_first else "Oldest") if is_started else "First",
        "last_label": ("Oldest" if newest_first else "Newest") if is_started else "Last",
        "sorts": sorts,
    }


def table_context(request: OrgRequest, table: TablePage) -> dict[str, Any]:
    return {
        "table": table,
        "listing": table.listing,
        "page": table.page,
        "selection": table.selection,
        "total": table.total,
        "links": table_links(request.path, table),
        "page_sizes": PAGE_SIZES,
        "list_url": reverse("calls:list"),
        "select_url": reverse("calls:select"),
        "sort_choices": SORT_CHOICES,
        "field_errors": [(name, " ".join(table.listing.errors.get(name, []))) for name in FILTER_FIELDS],
        "error_summary": [(field_label(name), " ".join(messages)) for name, messages in table.listing.errors.items()],
        "window_pages": WINDOW_PAGES,
        "window_rows": WINDOW_PAGES * table.listing.size,
    }


@require_safe
@organization_required
@vary_on_headers("HX-Request")
# Per user: the table shows the person's own selection and role-dependent actions.
@cached_view(preset="per_user", tags=["org:{org}", "selection:{org}:{user}"], params=(*LISTING_PARAMS, "fragment"))
def call_list(request: OrgRequest) -> HttpResponse:
    listing = parse_listing(request.GET)
    status = 400 if listing.errors else 200
    fragment = request.htmx and not request.htmx.history_restore_request
    if fragment and request.GET.get("fragment") == "chunk":
        # Infinite scroll: just the rows of one page, plus the sentinel that loads the next.
        table = table_page(request.organization, request.user, listing, with_total=False)
        context = table_context(request, table) | {"loading_prev": is_before_cursor(listing)}
        return render(request, "calls/list.html#chunk_response", context, status=status)
    table = table_page(request.organization, request.user, listing)
    context = table_context(request, table)
    if fragment:
        response = render(request, "calls/list.html#results", context | {"oob_errors": True}, status=status)
        # The form sends every field, empty or not; the address bar gets the canonical URL.
        response["HX-Push-Url"] = context["links"]["here"]
        return response
    form = CallListForm(request.GET, reps=rep_choices(request.organization))
    form.is_valid()
    return render(request, "calls/list.html", context | {"form": form}, status=status)


def is_before_cursor(listing: Listing) -> bool:
    if not listing.cursor:
        return False
    try:
        return decode_cursor(listing.cursor, listing.sort).direction == BEFORE
    except InvalidCursor:
        return False


def safe_next(request: OrgRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse("calls:list")


def listing_of(url: str) -> Listing:
    _, _, query = url.partition("?")
    return parse_listing(QueryDict(query))


# Call ids are bigints; a larger number would overflow SQLite's integers (a 500).
MAX_CALL_ID = 2**63 - 1


def parse_ids(values: list[str]) -> list[int] | None:
    """Whole numbers that can be call ids, or None if any value is not one."""
    try:
        ids = [int(v) for v in values if v]
    except ValueError:
        return None
    return ids if all(1 <= i <= MAX_CALL_ID for i in ids) else None


@require_POST
@organization_required
def selection_update(request: OrgRequest) -> HttpResponse:
    """Tick/untick one call, a page, everything matching a filter, or clear.
    htmx gets the new selection bar; a plain form is redirected back."""
    action = request.POST.get("action", "")
    org, user = request.organization, request.user
    next_url = safe_next(request)
    ids = parse_ids(request.POST.getlist("ids"))
    page_ids = parse_ids(request.POST.getlist("page_ids"))
    if ids is None or page_ids is None:
        return HttpResponseBadRequest("Call ids must be whole numbers from 1 up.")
    event: dict[str, Any] | None = None
    if action == "toggle":
        call_id = parse_ids([request.POST.get("call", "")])
        if not call_id:
            return HttpResponseBadRequest("Say which call to tick: call=<id>.")
        calls_selection.set_calls_selected(org, user, call_id, selected=call_id[0] in ids)
    elif action == "page":
        # The no-JavaScript path: the page's checkboxes submitted as one form.
        calls_selection.set_calls_selected(org, user, [i for i in page_ids if i in ids], selected=True)
        calls_selection.set_calls_selected(org, user, [i for i in page_ids if i not in ids], selected=False)
    elif action == "select_page":
        calls_selection.set_calls_selected(org, user, page_ids, selected=True)
        event = {"check": page_ids}
    elif action == "all":
        # Stored as its canonical query string (repeats dropped, fixed order); a
        # filter with invalid values is refused rather than widened to "everything".
        stored = parse_listing(QueryDict(request.POST.get("filters", "")))
        if stored.errors:
            return HttpResponseBadRequest("The filter to select by is not valid; reload the page and try again.")
        filters = stored.filters
        total = calls_selection.matching_total(org, user, filters)
        calls_selection.select_all_matching(org, user, filters, total)
        event = {"all": True}
    elif action == "clear":
        calls_selection.clear_selection(org, user)
        event = {"none": True}
    else:
        return HttpResponseBadRequest("Unknown selection action.")
    if not request.htmx:
        return redirect(next_url)
    listing = listing_of(next_url)
    matching = Call.objects.for_org(org).filtered(listing.filters)
    selection, total = calls_selection.table_summary(org, user, matching)
    context = {
        "listing": listing,
        "selection": selection,
        "total": total,
        "page": None,
        "page_ids": page_ids,
        "links": {"here": next_url},
    }
    response = render(request, "calls/list.html#selection_bar", context)
    if event is not None:
        trigger_client_event(response, "calls-selection", event)
    return response


@require_POST
@organization_required
def selection_export(request: OrgRequest) -> StreamingHttpResponse:
    calls = calls_selection.selected_calls(request.organization, request.user)
    response = StreamingHttpResponse(export_csv_lines(calls), content_type="text/csv; charset=utf-8")
    filename = f"calls-{request.organization.slug}-{date.today().isoformat()}.csv"  # noqa: DTZ011 - a name only
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@organization_required
def selection_outcome(request: OrgRequest) -> HttpResponse:
    form = BulkOutcomeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose an outcome to set.")
        return redirect(safe_next(request))
    result = set_selection_outcome(request.membership, form.cleaned_data["outcome"])
    label = dict(Call.Outcome.choices)[form.cleaned_data["outcome"]]
    messages.success(request, f"Outcome set to “{label}” on {result.changed:,} calls.")
    if result.not_permitted:
        messages.warning(request, not_permitted_message(result.not_permitted, "changed"))
    return redirect(safe_next(request))


def not_permitted_message(count: int, verb: str) -> str:
    noun, was = ("call", "was") if count == 1 else ("calls", "were")
    return f"{count:,} selected {noun} of your colleagues {was} not {verb}: reps change only their own calls."


@require_http_methods(["GET", "POST"])
@organization_required
def selection_delete(request: OrgRequest) -> HttpResponse:
    """GET asks for confirmation (a page, so it works without JavaScript); POST
    deletes. Managers and admins delete any selected call, reps their own."""
    next_url = safe_next(request)
    if request.method == "POST":
        result = delete_selection(request.membership)
        messages.success(request, f"Deleted {result.changed:,} calls.")
        if result.not_permitted:
            messages.warning(request, not_permitted_message(result.not_permitted, "deleted"))
        return redirect(next_url)
    calls, not_permitted = split_selection(request.membership)
    sample = list(calls.order_by("-started_at", "-id")[:5])
    selection, _ = calls_selection.table_summary(request.organization, request.user, None)
    # A manager's count is the selection's (estimated for a huge "all matching"); a rep's is exact.
    deletable = selection.count if request.membership.can_manage else calls.count()
    context = {
        "sample": sample,
        "selection": selection,
        "deletable": deletable,
        "not_permitted": not_permitted,
        "next_url": next_url,
    }
    return render(request, "calls/confirm_delete.html", context)


PIPELINE_STEPS = (
    (Call.Status.UPLOADED, "Uploaded"),
    (Call.Status.TRANSCRIBING, "Transcribed"),
    (Call.Status.ANALYZING, "Analysed"),
    (Call.Status.COMPLETED, "Completed"),
)


def pipeline_steps(call: Call) -> list[dict[str, str]]:
    """Each pipeline step as done / current / failed / pending."""
    order = [status for status, _ in PIPELINE_STEPS]
    if call.status == Call.Status.FAILED:
        # The step that failed is the first one whose product is missing.
        reached = 1 if not hasattr(call, "transcript") else 2
    else:
        reached = order.index(call.status)
    steps = []
    for index, (_, label) in enumerate(PIPELINE_STEPS):
        if call.status == Call.Status.COMPLETED or index < reached:
            state = "done"
        elif index == reached:
            state = "failed" if call.status == Call.Status.FAILED else "current"
        else:
            state = "pending"
        steps.append({"label": label, "state": state})
    return steps


@require_safe
@organization_required
@cached_view(preset="per_user", tags=["org:{org}", "call:{call_id}"], params=("t",))
def call_detail(request: OrgRequest, call_id: int) -> HttpResponse:
    call = get_object_or_404(
        Call.objects.for_org(request.organization).select_related("rep", "transcript", "analysis"), pk=call_id
    )
    context = {
        "call": call,
        "transcript": getattr(call, "transcript", None),
        "analysis": getattr(call, "analysis", None),
        "steps": pipeline_steps(call),
    } | listening_context(call, request.user, request.GET.get("t"))
    return render(request, "calls/detail.html", context)


@upload_limit(MAX_UPLOAD_BODY)
@require_http_methods(["GET", "POST"])
@organization_required
def call_upload(request: OrgRequest) -> HttpResponse:
    """Store the recording and the call first, then queue the pipeline once that
    has committed: nothing a person uploads is lost to a provider outage.
    The body limit is enforced before the body is read (resilience/uploads.py)."""
    initial = {"rep": request.user.pk, "started_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M")}
    form = CallUploadForm(
        request.POST or None, request.FILES or None, organization=request.organization, initial=initial
    )
    if not request.membership.can_manage:
        # Reps upload their own calls only (a call credited to a colleague changes their numbers).
        form.fields["rep"].queryset = form.fields["rep"].queryset.filter(pk=request.user.pk)
    if request.method == "POST":
        if form.is_valid():
            call = upload_call(organization=request.organization, form=form)
            messages.success(request, f"“{call.title}” is uploaded: transcription and analysis have started.")
            return redirect(call)
        return render(request, "calls/upload.html", {"form": form}, status=400)
    return render(request, "calls/upload.html", {"form": form})


@transaction.atomic
def upload_call(*, organization: Organization, form: CallUploadForm) -> Call:
    call = form.save(commit=False)
    call.organization = organization
    call.status = Call.Status.UPLOADED
    call.save()
    start_pipeline(call)
    return call
