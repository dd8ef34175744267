"""A database out of reach (restart, failover) answers 503 + Retry-After with a
page that says so, never a 500: the connection here really goes to a port where
nothing listens."""

from __future__ import annotations

import socket

import pytest
from django.db import connections


@pytest.fixture
def database_out_of_reach(django_db_blocker):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]  # nothing listens once the socket is closed
    connection = connections["default"]
    saved = dict(connection.settings_dict)
    with django_db_blocker.unblock():
        connection.close()
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port))
        try:
            yield
        finally:
            connection.close()
            connection.settings_dict.clear()
            connection.settings_dict.update(saved)


def test_a_page_answers_503_with_retry_after_and_a_friendly_page(client, database_out_of_reach):
    client.raise_request_exception = False
    client.cookies["sessionid"] = "a-session-the-database-must-be-asked-about"
    response = client.get("/calls/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "back in a moment" in response.content.decode()
    assert "Nothing you saved is lost" in response.content.decode()


def test_the_api_answers_503_json_with_retry_after(client, database_out_of_reach):
    client.raise_request_exception = False
    response = client.get("/api/v1/calls", headers={"Authorization": "Bearer ciq_not-checked-without-a-database"})
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "unavailable"
