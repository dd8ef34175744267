"""Model rules the database itself enforces."""

import pytest
from django.db import IntegrityError, transaction

from calls.models import Call
from calls.tenancy.models import Membership
from tests import factories


@pytest.mark.parametrize(
    ("field", "value"),
    [("score", 101), ("sentiment", 1.5), ("sentiment", -1.01), ("talk_ratio", 1.2), ("status", "lost-in-space")],
)
def test_the_database_rejects_out_of_range_call_values(org, field, value):
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.make_call(org, **{field: value})


def test_unanalysed_calls_may_have_no_score_or_sentiment(org):
    call = factories.make_call(org, status=Call.Status.UPLOADED, score=None, sentiment=None, outcome="")
    call.refresh_from_db()
    assert call.score is None
    assert call.sentiment is None


def test_a_user_is_a_member_of_an_organization_once(member):
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(user=member.user, organization=member.organization, role=Membership.Role.ADMIN)


def test_deleting_a_call_deletes_its_transcript_and_analysis(call):
    factories.make_transcript(call)
    factories.make_analysis(call)
    call.delete()
    assert not Call.objects.filter(pk=call.pk).exists()
    from calls.models import CallAnalysis, Transcript

    assert not Transcript.objects.exists()
    assert not CallAnalysis.objects.exists()


def test_transcript_text_joins_utterances_in_order(call):
    transcript = factories.make_transcript(call)
    assert transcript.text.splitlines() == [
        "A: Thanks for taking the time today.",
        "B: Happy to. What does pricing look like?",
    ]
