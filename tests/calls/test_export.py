"""Bulk actions on the selection: streamed CSV export, set outcome, delete."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from calls.events import calls_bulk_changed
from calls.export import csv_safe
from calls.forms import filters_from_querystring as parse_filters
from calls.models import Call, CallSelection, SelectionItem
from calls.selection import Total as ListingTotal
from calls.selection import select_all_matching, set_calls_selected
from calls.tenancy.models import Membership
from tests import factories
from tests.calls.helpers import bulk_calls


@pytest.fixture
def many_calls(org, member):
    return bulk_calls(
        org, [{"title": f"Exported {n:02d}", "score": n, "rep": member.user, "outcome": ""} for n in range(40)]
    )


@pytest.fixture
def announcements():
    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    calls_bulk_changed.connect(receiver)
    yield received
    calls_bulk_changed.disconnect(receiver)


def export(client) -> list[dict[str, str]]:
    response = client.post(reverse("calls:export"))
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_the_csv_holds_exactly_the_ticked_calls(signed_in, org, member, many_calls):
    chosen = [many_calls[i] for i in (1, 7, 33)]
    set_calls_selected(org, member.user, [c.pk for c in chosen], selected=True)
    rows = export(signed_in)
    assert sorted(int(r["id"]) for r in rows) == sorted(c.pk for c in chosen)
    assert {r["title"] for r in rows} == {c.title for c in chosen}
    assert rows[0]["rep"] == member.user.get_full_name()


def test_the_csv_of_all_matching_holds_the_filter_minus_the_unticked(signed_in, org, member, many_calls):
    filters = parse_filters("score_min=10&score_max=19")
    select_all_matching(org, member.user, filters, ListingTotal(10, exact=True))
    set_calls_selected(org, member.user, [many_calls[12].pk], selected=False)
    rows = export(signed_in)
    assert sorted(int(r["score"]) for r in rows) == [s for s in range(10, 20) if s != 12]


def test_the_csv_never_holds_another_orgs_calls_even_from_a_forged_selection(
    signed_in, org, member, many_calls, other_org_call
):
    set_calls_selected(org, member.user, [many_calls[0].pk], selected=True)
    selection = CallSelection.objects.get(user=member.user, organization=org)
    SelectionItem.objects.create(selection=selection, call=other_org_call)  # as if written by a bug
    rows = export(signed_in)
    assert [int(r["id"]) for r in rows] == [many_calls[0].pk]


def test_an_empty_selection_exports_just_the_header(signed_in, many_calls):
    assert export(signed_in) == []


def test_formula_like_cells_are_neutralised(signed_in, org, member):
    call = factories.make_call(org, customer_name='=HYPERLINK("http://x")')
    set_calls_selected(org, member.user, [call.pk], selected=True)
    assert export(signed_in)[0]["customer_name"].startswith("'=")


@pytest.mark.parametrize(
    ("typed", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+1+1", "'+1+1"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        (" =1+1", "' =1+1"),
        ("\t=1+1", "'\t'=1+1"),
        ("\tplain", "'\tplain"),
        ("\r=1+1", "'\r'=1+1"),
        ("Renewal;=1+1", "Renewal;'=1+1"),
        ("Renewal, =1+1", "Renewal, '=1+1"),
        ("Renewal|@SUM(A1)", "Renewal|'@SUM(A1)"),
        ("Renewal\t-2+3", "Renewal\t'-2+3"),
        ("-0.4", "'-0.4"),
    ],
)
def test_every_way_into_a_formula_gets_a_quote(typed, written):
    assert csv_safe(typed) == written


@pytest.mark.parametrize("harmless", ["Acme Renewal", "Smith-Jones", "5 + 5 seats", "a@b.example", "", "Q3; renewal"])
def test_harmless_text_is_written_as_typed(harmless):
    assert csv_safe(harmless) == harmless


@pytest.mark.parametrize("number", [-0.4, -1, 0, 42])
def test_our_own_numbers_are_written_unchanged_even_when_negative(number):
    assert csv_safe(number) == number


def test_an_export_neutralises_a_hidden_formula_and_keeps_a_negative_sentiment(signed_in, org, member):
    call = factories.make_call(org, title="Renewal;=1+1", customer_name=" =1+1", sentiment=-0.4, score=30)
    set_calls_selected(org, member.user, [call.pk], selected=True)
    [row] = export(signed_in)
    assert row["title"] == "Renewal;'=1+1"
    assert row["customer_name"] == "' =1+1"
    assert row["sentiment"] == "-0.4"


def test_export_needs_a_post(signed_in):
    assert signed_in.get(reverse("calls:export")).status_code == 405


def test_set_outcome_changes_exactly_the_selection_and_announces_it(
    signed_in, org, member, many_calls, announcements, django_capture_on_commit_callbacks
):
    chosen = [many_calls[2].pk, many_calls[3].pk]
    set_calls_selected(org, member.user, chosen, selected=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(reverse("calls:bulk_outcome"), {"outcome": "won", "next": "/calls/?sort=score"})
    assert response.status_code == 302
    assert response.url == "/calls/?sort=score"
    assert set(Call.objects.filter(outcome="won").values_list("pk", flat=True)) == set(chosen)
    assert len(announcements) == 1
    assert announcements[0]["organization_id"] == org.pk
    assert sorted(announcements[0]["call_ids"]) == sorted(chosen)
    assert announcements[0]["started_between"] is not None


def test_an_unknown_outcome_changes_nothing(signed_in, org, member, many_calls):
    set_calls_selected(org, member.user, [many_calls[0].pk], selected=True)
    signed_in.post(reverse("calls:bulk_outcome"), {"outcome": "jackpot"})
    assert not Call.objects.exclude(outcome="").exists()


def test_delete_asks_first_then_deletes_exactly_the_selection_and_announces_it(
    signed_in, org, member, many_calls, other_org_call, announcements, django_capture_on_commit_callbacks
):
    chosen = [many_calls[5].pk, many_calls[6].pk, many_calls[7].pk]
    set_calls_selected(org, member.user, chosen, selected=True)
    confirm = signed_in.get(reverse("calls:bulk_delete"), {"next": "/calls/"})
    assert "Delete 3 calls?" in confirm.text
    assert Call.objects.filter(pk__in=chosen).count() == 3
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(reverse("calls:bulk_delete"), {"next": "/calls/"})
    assert response.status_code == 302
    assert not Call.objects.filter(pk__in=chosen).exists()
    assert Call.objects.for_org(org).count() == 37
    assert Call.objects.filter(pk=other_org_call.pk).exists()
    assert sorted(announcements[0]["call_ids"]) == sorted(chosen)
    assert not CallSelection.objects.filter(user=member.user).exists()


def test_delete_of_all_matching_works_in_chunks_and_spares_the_rest(signed_in, org, member, many_calls, monkeypatch):
    from calls import bulk

    monkeypatch.setattr(bulk, "DELETE_CHUNK", 7)
    select_all_matching(org, member.user, parse_filters("score_max=29"), ListingTotal(30, exact=True))
    set_calls_selected(org, member.user, [many_calls[0].pk], selected=False)
    signed_in.post(reverse("calls:bulk_delete"))
    assert sorted(Call.objects.for_org(org).values_list("score", flat=True)) == [0, *range(30, 40)]


def test_a_rep_cannot_delete_a_colleagues_calls(client, org, many_calls):
    # Reps delete only their own calls (tests/calls/test_roles.py has the whole table).
    rep = factories.make_membership(org, role=Membership.Role.REP)
    client.force_login(rep.user)
    set_calls_selected(org, rep.user, [many_calls[0].pk], selected=True)
    assert client.post(reverse("calls:bulk_delete")).status_code == 302
    assert Call.objects.filter(pk=many_calls[0].pk).exists()
