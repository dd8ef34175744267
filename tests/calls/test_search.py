"""Search what was said: the transcript search page and API, their filters,
keyset pages, highlighting, bad input and tenancy. Tests marked sqlite also
run against the SQLite fallback (a contains match) in the SQLite lane."""

from __future__ import annotations

import itertools
import json
import random
from datetime import timedelta

import pytest
from django.core import signing
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from calls.dialogue import generate_dialogue
from calls.models import Call, Transcript
from calls.search import CURSOR_SALT, SearchRequest, parse_search, search_calls
from calls.tenancy.models import ApiToken, Membership
from calls.transcript_index import CONFIGS, FALLBACK_CONFIG, SEARCH_CONFIGS
from tests import factories

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="full-text search (tsvector, ranking) is PostgreSQL's"
)


def say(*lines: str) -> list[dict]:
    """Utterances alternating rep (A) and customer (B), ten seconds each."""
    return [
        {"speaker": "AB"[n % 2], "start_ms": n * 10_000, "end_ms": n * 10_000 + 9_000, "text": text}
        for n, text in enumerate(lines)
    ]


def transcribed_call(org, text_lines: list[str], language: str = "en", **fields) -> Call:
    call = factories.make_call(org, **fields)
    Transcript.objects.create(call=call, utterances=say(*text_lines), language=language)
    return call


def search(client, **params):
    return client.get(reverse("calls:search"), params)


def api_search(client, **params):
    return client.get(reverse("calls_api:search"), params)


@pytest.fixture
def signed_in(client, member):
    client.force_login(member.user)
    return client


@pytest.fixture
def pricing_call(org, member) -> Call:
    return transcribed_call(
        org,
        [
            "Thanks for taking the time today.",
            "Last year we had a price increase from our vendor, so we are careful.",
            "We lock the price for the whole contract term.",
            "That helps with the budget.",
        ],
        rep=member.user,
        title="Pricing discussion with Northwind",
    )


@pytest.mark.sqlite
def test_a_phrase_finds_the_call_and_links_the_matching_turn_at_its_second(signed_in, pricing_call):
    response = search(signed_in, q='"price increase"')
    assert response.status_code == 200
    page = response.context["page"]
    assert [hit.call.pk for hit in page.hits] == [pricing_call.pk]
    turn = page.hits[0].turns[0]
    assert turn.start_ms == 10_000
    assert turn.speaker == "B"
    assert f"/calls/{pricing_call.pk}/?t=10#t-10" in response.text
    # PostgreSQL marks each word, the SQLite fallback the phrase: either way both words are marked.
    assert "<mark>price" in response.text.lower()
    assert "increase</mark>" in response.text.lower()


@pytest.mark.sqlite
def test_a_minus_word_excludes_the_calls_that_say_it(signed_in, org, pricing_call):
    other = transcribed_call(org, ["Is there a price increase planned?", "No, but we give a discount on two years."])
    both = {hit.call.pk for hit in search(signed_in, q='"price increase"').context["page"].hits}
    assert both == {pricing_call.pk, other.pk}
    response = search(signed_in, q='"price increase" -discount')
    assert [hit.call.pk for hit in response.context["page"].hits] == [pricing_call.pk]


@pytest.mark.sqlite
def test_a_call_without_the_words_is_not_a_result(signed_in, org, pricing_call):
    transcribed_call(org, ["We talked about onboarding and training only."])
    response = search(signed_in, q="onboarding")
    assert pricing_call.title not in response.text
    assert len(response.context["page"].hits) == 1


@pytest.mark.sqlite
def test_search_never_shows_another_organizations_transcripts(signed_in, org, pricing_call, other_org):
    leaked = transcribed_call(
        other_org, ["Globex secret: a price increase of forty percent."], title="Globex secret pricing call"
    )
    response = search(signed_in, q="price increase")
    ids = [hit.call.pk for hit in response.context["page"].hits]
    assert ids == [pricing_call.pk]
    assert "Globex secret" not in response.text
    assert "forty percent" not in response.text
    api = api_search(signed_in, q="price increase").json()
    assert [result["id"] for result in api["results"]] == [pricing_call.pk]
    assert "forty percent" not in json.dumps(api)
    assert f"/calls/{leaked.pk}/" not in json.dumps(api)
    # The other organization's own search finds its call, and not ours.
    assert [h.call.pk for h in search_calls(other_org, SearchRequest(q="price increase")).hits] == [leaked.pk]


@pytest.mark.sqlite
def test_a_token_searches_its_own_organization_only(client, member, pricing_call, other_org):
    transcribed_call(other_org, ["Another price increase, elsewhere."])
    _, raw = ApiToken.issue(user=member.user, organization=member.organization, name="CRM")
    response = client.get(reverse("calls_api:search"), {"q": "price"}, headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["id"] for r in results] == [pricing_call.pk]
    assert results[0]["turns"][0]["url"].startswith(f"/calls/{pricing_call.pk}/?t=")
    assert "<mark>" in results[0]["turns"][0]["html"]
    assert "<mark>" not in results[0]["turns"][0]["text"]


def test_signed_out_people_are_sent_to_sign_in_and_the_api_answers_401(client, pricing_call):
    page = search(client, q="price")
    assert page.status_code == 302
    assert "/login" in page["Location"]
    api = api_search(client, q="price")
    assert api.status_code == 401
    assert api.json()["error"]["code"] == "not_authenticated"


def test_someone_in_no_organization_is_refused(client, pricing_call):
    client.force_login(factories.make_user())
    assert search(client, q="price").status_code == 403
    assert api_search(client, q="price").status_code == 403


@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("", "Type something"),
        ("   ", "Type something"),
        ("x" * 201, "at most 200"),
        ('" - or', "only operators"),
        ("-discount", "Nothing to look for"),
        ("a\x00b", "Null characters"),
    ],
)
def test_a_search_with_nothing_to_look_for_is_a_400_with_a_message(signed_in, pricing_call, q, message):
    response = search(signed_in, q=q)
    assert response.status_code == 400
    assert message in response.text
    api = api_search(signed_in, q=q)
    assert api.status_code == 400
    assert message in json.dumps(api.json()["error"], ensure_ascii=False)
    assert "q" in api.json()["error"]["fields"]


@postgres_only
def test_only_common_words_is_a_400(signed_in, pricing_call):
    response = search(signed_in, q="the and of")
    assert response.status_code == 400
    assert "too common" in response.text


def test_the_empty_page_is_a_search_box_not_an_error(signed_in):
    response = signed_in.get(reverse("calls:search"))
    assert response.status_code == 200
    assert 'name="q"' in response.text
    assert "Type something" not in response.text


@pytest.mark.sqlite
def test_invalid_filters_are_a_400_naming_the_field(signed_in, pricing_call):
    response = search(signed_in, q="price", score_min="500")
    assert response.status_code == 400
    api = api_search(signed_in, q="price", started_from="not-a-date").json()
    assert "started_from" in api["error"]["fields"]


@pytest.mark.sqlite
def test_the_dashboards_filters_narrow_the_search(signed_in, org, member):
    rep = factories.make_membership(org).user
    now = timezone.now()
    lines = ["Our main competitor is Dealwise."]
    mine = transcribed_call(org, lines, rep=member.user, outcome=Call.Outcome.WON, score=80, started_at=now)
    theirs = transcribed_call(org, lines, rep=rep, outcome=Call.Outcome.LOST, score=40, started_at=now)
    long_ago = now - timedelta(days=90)
    old = transcribed_call(org, lines, rep=rep, outcome=Call.Outcome.LOST, score=45, started_at=long_ago)

    def ids(**filters) -> set[int]:
        return {hit.call.pk for hit in search(signed_in, q="Dealwise", **filters).context["page"].hits}

    assert ids() == {mine.pk, theirs.pk, old.pk}
    assert ids(rep=member.user.pk) == {mine.pk}
    assert ids(outcome="lost") == {theirs.pk, old.pk}
    assert ids(score_min=50) == {mine.pk}
    assert ids(started_from=(now - timedelta(days=7)).date().isoformat()) == {mine.pk, theirs.pk}
    assert ids(outcome="lost", score_max=42) == {theirs.pk}


@pytest.mark.sqlite
def test_keyset_pages_cover_every_match_once_in_order(org):
    for n in range(23):
        # More mentions, closer together, rank higher; the fallback's order is by id.
        transcribed_call(org, ["Security review next week."] * (1 + n % 4) + ["Thanks."])
    request = SearchRequest(q="security review")
    seen: list[tuple[float, int]] = []
    pages = 0
    while pages < 10:  # five pages are expected; a cursor that does not advance must fail, not hang
        page = search_calls(org, request, size=5)
        pages += 1
        seen.extend((hit.rank, hit.call.pk) for hit in page.hits)
        if page.next_cursor is None:
            break
        request = SearchRequest(q=request.q, filters=request.filters, cursor=page.next_cursor)
    assert pages == 5
    assert len(seen) == 23 == len({pk for _, pk in seen})
    assert seen == sorted(seen, reverse=True)


@pytest.mark.sqlite
def test_the_more_results_link_leads_to_the_next_page_with_the_same_filters(signed_in, org, member):
    for _ in range(25):
        transcribed_call(org, ["The renewal uplift worries finance."], rep=member.user)
    first = search(signed_in, q="renewal", rep=member.user.pk)
    assert len(first.context["page"].hits) == 20
    next_url = first.context["links"]["next"]
    assert f"rep={member.user.pk}" in next_url
    second = signed_in.get(next_url)
    assert second.status_code == 200
    first_ids = {hit.call.pk for hit in first.context["page"].hits}
    second_ids = {hit.call.pk for hit in second.context["page"].hits}
    assert len(second_ids) == 5
    assert not first_ids & second_ids


@pytest.mark.sqlite
def test_an_altered_cursor_restarts_the_page_and_is_a_400_in_the_api(signed_in, pricing_call):
    response = search(signed_in, q="price", cursor="garbage")
    assert response.status_code == 200
    assert "not valid" in response.text
    assert [hit.call.pk for hit in response.context["page"].hits] == [pricing_call.pk]
    api = api_search(signed_in, q="price", cursor="garbage")
    assert api.status_code == 400
    assert "cursor" in api.json()["error"]["fields"]


@pytest.mark.sqlite
def test_an_altered_cursor_with_a_bad_query_is_still_a_400(signed_in, pricing_call):
    response = search(signed_in, q="-discount", cursor="garbage")
    assert response.status_code == 400
    assert "Nothing to look for" in response.text


@pytest.mark.sqlite
def test_a_cursor_of_another_search_is_refused(signed_in, pricing_call):
    request, _ = parse_search(_query(q="budget"))
    cursor = signing.dumps({"r": 0.5, "i": pricing_call.pk, "h": request.digest}, salt=CURSOR_SALT)
    api = api_search(signed_in, q="price", cursor=cursor)
    assert api.status_code == 400
    assert "another search" in api.json()["error"]["message"]


def _query(**params):
    from django.http import QueryDict
    from django.utils.http import urlencode

    return QueryDict(urlencode(params))


@pytest.mark.sqlite
def test_transcript_text_is_escaped_and_only_our_marks_are_html(signed_in, org):
    transcribed_call(
        org,
        [
            '<script>alert("x")</script> the price <b>is</b> fine',
            "Sneaky \ue000price\ue001 delimiters <img src=x onerror=alert(1)>",
        ],
    )
    response = search(signed_in, q="price")
    text = response.text
    assert "<script>alert" not in text
    assert "<img src=x" not in text
    assert "<b>is</b>" not in text
    assert "&lt;script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "\ue000" not in text
    assert "\ue001" not in text
    assert text.lower().count("<mark>price</mark>") == 2


@postgres_only
def test_results_are_ranked_by_how_well_the_transcript_matches(org):
    weak = transcribed_call(org, ["We might discuss the price at some point.", "Later on, an increase is possible."])
    strong = transcribed_call(org, ["The price increase is the issue.", "Another price increase would hurt."])
    page = search_calls(org, SearchRequest(q="price increase"))
    assert [hit.call.pk for hit in page.hits] == [strong.pk, weak.pk]
    assert page.hits[0].rank > page.hits[1].rank > 0
    # Words said in separate turns still show those turns, marked as partial matches.
    assert page.hits[1].matching_turns == 0
    assert [turn.exact for turn in page.hits[1].turns] == [False, False]
    assert page.hits[0].matching_turns == 2


@postgres_only
def test_a_phrase_never_matches_across_two_turns(org):
    transcribed_call(org, ["What about the price", "increase next year?"])
    assert search_calls(org, SearchRequest(q='"price increase"')).hits == []
    assert len(search_calls(org, SearchRequest(q="price increase")).hits) == 1


@postgres_only
def test_each_transcript_is_searched_in_its_own_language(org):
    german = transcribed_call(org, ["Die Verträge sind fertig."], language="de")
    english = transcribed_call(org, ["The contracts are ready."], language="en")
    # German stemming: "Vertrag" finds "Verträge"; English stemming: "contract" finds "contracts".
    assert {h.call.pk for h in search_calls(org, SearchRequest(q="Vertrag")).hits} == {german.pk}
    assert {h.call.pk for h in search_calls(org, SearchRequest(q="contract")).hits} == {english.pk}
    # "und" is a German stop word but an ordinary word in an unknown language (simple configuration).
    other = transcribed_call(org, ["Wir reden und reden."], language="xx")
    assert {h.call.pk for h in search_calls(org, SearchRequest(q="und")).hits} == {other.pk}


@postgres_only
def test_the_language_mapping_in_python_and_in_postgresql_agree(db):
    codes = [*SEARCH_CONFIGS, "EN", "pt-BR", "de-AT", "", "xx", "zz-YY"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT c, calls_search_config(c)::text FROM unnest(%s::text[]) c", [codes])
        in_sql = dict(cursor.fetchall())
    expected = {code: SEARCH_CONFIGS.get(code.split("-")[0].lower(), FALLBACK_CONFIG) for code in codes}
    expected[""] = "english"
    assert in_sql == expected
    assert set(CONFIGS) == {*SEARCH_CONFIGS.values(), FALLBACK_CONFIG}


@postgres_only
def test_the_stored_vector_follows_every_change_of_the_text(org):
    call = transcribed_call(org, ["We use Pipewave today."])
    assert len(search_calls(org, SearchRequest(q="Pipewave")).hits) == 1
    transcript = call.transcript
    transcript.utterances = say("We switched to Convoscope.")
    transcript.save()
    assert search_calls(org, SearchRequest(q="Pipewave")).hits == []
    assert len(search_calls(org, SearchRequest(q="Convoscope")).hits) == 1
    Transcript.objects.filter(pk=transcript.pk).update(utterances=say("Back on Pipewave."))
    assert len(search_calls(org, SearchRequest(q="Pipewave")).hits) == 1


def test_the_dashboard_has_a_search_box_that_leads_to_the_search(signed_in):
    response = signed_in.get(reverse("calls:list"))
    assert f'action="{reverse("calls:search")}"' in response.text
    assert 'id="transcript-q"' in response.text


@pytest.mark.sqlite
def test_a_rep_can_search_too(client, org, pricing_call):
    rep = factories.make_membership(org, role=Membership.Role.REP)
    client.force_login(rep.user)
    assert search(client, q="price").status_code == 200


def test_generated_dialogues_are_full_sales_calls():
    for seed in range(50):
        duration = random.Random(seed).randint(60, 3600)
        turns = generate_dialogue(
            random.Random(seed), duration_seconds=duration, talk_ratio=0.6, customer="Ava Chen", company="Atlas Labs"
        )
        again = generate_dialogue(
            random.Random(seed), duration_seconds=duration, talk_ratio=0.6, customer="Ava Chen", company="Atlas Labs"
        )
        assert turns == again
        assert 30 <= len(turns) <= 80
        assert [t["speaker"] for t in turns[:2]] == ["A", "B"]
        assert turns[0]["text"].startswith("Hi Ava")
        assert all(t["start_ms"] < t["end_ms"] for t in turns)
        assert all(a["end_ms"] <= b["start_ms"] for a, b in itertools.pairwise(turns))
        assert turns[-1]["end_ms"] <= duration * 1000
        rep_ms = sum(t["end_ms"] - t["start_ms"] for t in turns if t["speaker"] == "A")
        all_ms = sum(t["end_ms"] - t["start_ms"] for t in turns)
        assert 0.45 < rep_ms / all_ms < 0.75
    words = " ".join(t["text"] for seed in range(200) for t in _dialogue(seed)).lower()
    for topic in ("price", "competitor", "security review", "next step", "discount", "proposal"):
        assert topic in words


def _dialogue(seed: int) -> list[dict]:
    return generate_dialogue(
        random.Random(seed), duration_seconds=600, talk_ratio=0.5, customer="Ben Brooks", company="Iron Works"
    )


@pytest.mark.sqlite
def test_seed_demo_gives_the_asked_number_of_calls_full_searchable_transcripts(db):
    from django.core.management import call_command

    call_command("seed_demo", "--calls", "400", "--orgs", "1", "--transcripts", "60", "--verbosity", "0")
    transcripts = list(Transcript.objects.all())
    assert 55 <= len(transcripts) <= 60
    assert all(30 <= len(t.utterances) <= 80 for t in transcripts)
    assert not Transcript.objects.exclude(call__status=Call.Status.COMPLETED).exists()
    org = transcripts[0].call.organization
    page = search_calls(org, SearchRequest(q="pricing"))
    assert page.hits
    assert all(hit.turns for hit in page.hits)


def test_seed_demo_refuses_a_transcripts_value_it_cannot_read(db):
    from django.core.management import CommandError, call_command

    for value in ("1.5", "-3", "lots", "150%"):
        with pytest.raises(CommandError, match="--transcripts"):
            call_command("seed_demo", "--calls", "10", "--transcripts", value, "--verbosity", "0")
