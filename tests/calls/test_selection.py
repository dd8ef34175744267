"""The selection: kept server-side per person and organization, across pages and reloads."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.http import urlencode

from calls.models import CallSelection, SelectionItem
from calls.selection import selected_calls
from tests import factories
from tests.calls.helpers import bulk_calls

HTMX = {"HX-Request": "true"}


@pytest.fixture
def many_calls(org):
    return bulk_calls(org, [{"title": f"Selectable {n:02d}", "score": n} for n in range(60)])


def checked_ids(html: str) -> set[int]:
    return {int(pk) for pk in re.findall(r'name="ids" value="(\d+)" form="rows-form"[^>]*? checked', html)}


def toggle(client, call_id: int, *, selected: bool):
    data = {"action": "toggle", "call": call_id, "next": "/calls/"}
    if selected:
        data["ids"] = call_id
    return client.post(reverse("calls:select"), data, headers=HTMX)


def test_ticked_calls_stay_ticked_across_pages_and_reloads(
    signed_in, org, member, many_calls, django_capture_on_commit_callbacks
):
    first_page = signed_in.get(reverse("calls:list"), {"size": 25, "sort": "score"})
    second_url = re.search(r'href="([^"]+)" hx-get="[^"]+" rel="next"', first_page.text).group(1)
    second_url = second_url.replace("&amp;", "&")
    # The page was cached; the selection's change reaches the cache on commit.
    with django_capture_on_commit_callbacks(execute=True):
        toggle(signed_in, many_calls[0].pk, selected=True)
        toggle(signed_in, many_calls[30].pk, selected=True)

    assert checked_ids(signed_in.get(reverse("calls:list"), {"size": 25, "sort": "score"}).text) == {many_calls[0].pk}
    assert checked_ids(signed_in.get(second_url).text) == {many_calls[30].pk}
    assert set(selected_calls(org, member.user).values_list("pk", flat=True)) == {many_calls[0].pk, many_calls[30].pk}


def test_the_selection_bar_counts_the_selection(signed_in, many_calls):
    response = toggle(signed_in, many_calls[5].pk, selected=True)
    assert "1 call selected" in response.text
    response = toggle(signed_in, many_calls[6].pk, selected=True)
    assert "2 calls selected" in response.text
    response = toggle(signed_in, many_calls[5].pk, selected=False)
    assert "1 call selected" in response.text


def test_select_all_matching_stores_the_filter_not_the_ids(signed_in, org, member, many_calls):
    response = signed_in.post(
        reverse("calls:select"),
        {"action": "all", "filters": "score_min=10&score_max=49", "next": "/calls/?score_min=10&score_max=49"},
        headers=HTMX,
    )
    assert json.loads(response["HX-Trigger"]) == {"calls-selection": {"all": True}}
    assert "All 40 calls matching" in response.text
    selection = CallSelection.objects.get(user=member.user, organization=org)
    assert selection.all_matching
    assert SelectionItem.objects.filter(selection=selection).count() == 0
    assert set(selected_calls(org, member.user).values_list("score", flat=True)) == set(range(10, 50))
    # Every matching call shows ticked on every page; others do not.
    page = signed_in.get(reverse("calls:list"), {"sort": "score", "size": 25})
    assert checked_ids(page.text) == {c.pk for c in many_calls if 10 <= c.score < 25}


def test_unticking_one_call_after_select_all_excludes_just_that_call(signed_in, org, member, many_calls):
    signed_in.post(reverse("calls:select"), {"action": "all", "filters": ""}, headers=HTMX)
    response = toggle(signed_in, many_calls[3].pk, selected=False)
    assert "All 59 calls matching" in response.text
    assert selected_calls(org, member.user).count() == 59
    assert not selected_calls(org, member.user).filter(pk=many_calls[3].pk).exists()


def test_select_this_page_ticks_the_pages_calls(signed_in, org, member, many_calls):
    ids = [c.pk for c in many_calls[:3]]
    response = signed_in.post(
        reverse("calls:select"), {"action": "select_page", "page_ids": ids, "next": "/calls/"}, headers=HTMX
    )
    assert json.loads(response["HX-Trigger"]) == {"calls-selection": {"check": ids}}
    assert set(selected_calls(org, member.user).values_list("pk", flat=True)) == set(ids)


def test_the_no_javascript_form_sets_the_pages_ticks_and_redirects_back(signed_in, org, member, many_calls):
    page_ids = [c.pk for c in many_calls[:4]]
    toggle(signed_in, page_ids[3], selected=True)
    response = signed_in.post(
        reverse("calls:select"),
        {"action": "page", "page_ids": page_ids, "ids": page_ids[:2], "next": "/calls/?sort=score"},
    )
    assert response.status_code == 302
    assert response.url == "/calls/?sort=score"
    assert set(selected_calls(org, member.user).values_list("pk", flat=True)) == set(page_ids[:2])


def test_clear_empties_the_selection(signed_in, org, member, many_calls):
    toggle(signed_in, many_calls[0].pk, selected=True)
    response = signed_in.post(reverse("calls:select"), {"action": "clear"}, headers=HTMX)
    assert "No calls selected" in response.text
    assert selected_calls(org, member.user).count() == 0


def test_a_redirect_never_leaves_the_site(signed_in, many_calls):
    response = signed_in.post(reverse("calls:select"), {"action": "clear", "next": "https://evil.example/"})
    assert response.url == reverse("calls:list")


def test_bad_selection_input_is_a_400(signed_in, many_calls):
    assert signed_in.post(reverse("calls:select"), {"action": "explode"}).status_code == 400
    assert signed_in.post(reverse("calls:select"), {"action": "toggle", "ids": "x"}).status_code == 400
    assert signed_in.post(reverse("calls:select"), {"action": "toggle"}).status_code == 400


def test_select_all_with_a_flood_of_repeated_statuses_stores_the_filter_once(signed_in, org, member, many_calls):
    filters = urlencode([("status", "completed")] * 150 + [("status", "failed")] * 150 + [("q", "é" * 200)])
    response = signed_in.post(reverse("calls:select"), {"action": "all", "filters": filters, "next": "/calls/"})
    assert response.status_code == 302
    selection = CallSelection.objects.get(user=member.user, organization=org)
    assert selection.all_matching
    assert selection.filter_query == urlencode([("status", "completed"), ("status", "failed"), ("q", "é" * 200)])


def test_select_all_with_an_invalid_filter_is_refused_not_widened_to_everything(signed_in, org, member, many_calls):
    response = signed_in.post(reverse("calls:select"), {"action": "all", "filters": "status=bogus", "next": "/calls/"})
    assert response.status_code == 400
    assert "filter" in response.text
    assert not CallSelection.objects.filter(user=member.user, organization=org).exists()


def test_selection_posts_need_the_csrf_token(member, many_calls):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member.user)
    response = client.post(reverse("calls:select"), {"action": "clear"})
    assert response.status_code == 403


def test_another_orgs_calls_cannot_be_selected(signed_in, org, member, other_org_call):
    toggle(signed_in, other_org_call.pk, selected=True)
    assert not SelectionItem.objects.filter(call=other_org_call).exists()
    assert selected_calls(org, member.user).count() == 0


def test_each_person_has_their_own_selection(signed_in, org, member, many_calls):
    toggle(signed_in, many_calls[0].pk, selected=True)
    colleague = factories.make_membership(org)
    other = Client()
    other.force_login(colleague.user)
    assert checked_ids(other.get(reverse("calls:list"), {"sort": "score"}).text) == set()
    assert selected_calls(org, colleague.user).count() == 0


def test_a_selection_belongs_to_one_organization(member, org, other_org, many_calls):
    factories.make_membership(other_org, user=member.user)
    client = Client()
    client.force_login(member.user)
    toggle(client, many_calls[0].pk, selected=True)
    assert selected_calls(other_org, member.user).count() == 0
    assert selected_calls(org, member.user).count() == 1


def test_every_selection_change_is_announced_for_the_cache(
    signed_in, org, member, many_calls, django_capture_on_commit_callbacks
):
    from calls.selection import selection_changed

    received = []

    def receiver(sender, signal, **kwargs):
        received.append(kwargs)

    selection_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            toggle(signed_in, many_calls[0].pk, selected=True)
            signed_in.post(reverse("calls:select"), {"action": "all", "filters": ""}, headers=HTMX)
            signed_in.post(reverse("calls:select"), {"action": "clear"}, headers=HTMX)
    finally:
        selection_changed.disconnect(receiver)
    assert received == [{"organization_id": org.pk, "user_id": member.user.pk}] * 3


def test_after_select_all_calls_outside_the_stored_filter_cannot_be_ticked(signed_in, many_calls):
    signed_in.post(reverse("calls:select"), {"action": "all", "filters": "score_max=9"}, headers=HTMX)
    page = signed_in.get(reverse("calls:list"), {"sort": "score", "size": 25})
    disabled = {int(pk) for pk in re.findall(r'name="ids" value="(\d+)"[^>]*? disabled', page.text)}
    assert disabled == {c.pk for c in many_calls if 10 <= c.score < 25}
    assert checked_ids(page.text) == {c.pk for c in many_calls if c.score < 10}


def test_a_cached_table_shows_a_selection_change_on_the_next_request(
    signed_in, many_calls, django_capture_on_commit_callbacks
):
    url = reverse("calls:list")
    assert signed_in.get(url).headers["X-Cache"] == "MISS"
    assert signed_in.get(url).headers["X-Cache"] == "HIT"
    with django_capture_on_commit_callbacks(execute=True):
        toggle(signed_in, many_calls[59].pk, selected=True)
    response = signed_in.get(url)
    assert response.headers["X-Cache"] == "MISS"
    assert checked_ids(response.text) == {many_calls[59].pk}
