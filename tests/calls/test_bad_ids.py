"""Call ids sent to the selection are range-checked: a number past any id is a
400 with a message on PostgreSQL and on SQLite, never an overflow (500)."""

import pytest
from django.urls import reverse

HUGE = "99999999999999999999"


@pytest.mark.sqlite
@pytest.mark.parametrize(
    "data",
    [
        {"action": "toggle", "call": HUGE, "ids": HUGE},
        {"action": "page", "page_ids": HUGE, "ids": HUGE},
        {"action": "select_page", "page_ids": HUGE},
        {"action": "select_page", "page_ids": "-1"},
        {"action": "toggle", "call": "0", "ids": "0"},
    ],
)
def test_call_ids_out_of_range_are_a_400_with_a_message(client, member, call, data):
    client.force_login(member.user)
    response = client.post(reverse("calls:select"), data)
    assert response.status_code == 400
    assert "whole numbers" in response.text


@pytest.mark.sqlite
def test_the_largest_possible_id_is_simply_not_a_call(client, member, call):
    client.force_login(member.user)
    response = client.post(reverse("calls:select"), {"action": "select_page", "page_ids": str(2**63 - 1)})
    assert response.status_code == 302
