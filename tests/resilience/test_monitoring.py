"""The staff monitoring page: health, live breaker states and cache hit rates."""

from django.urls import reverse

from resilience.breaker.core import breaker


def test_staff_see_every_breakers_live_state_and_the_cache(client, staff_user, member, call):
    breaker("openai").force("open", actor="test")
    reader = client
    reader.force_login(member.user)
    reader.get(reverse("calls:list"))
    reader.get(reverse("calls:list"))  # a hit for the statistics
    client.force_login(staff_user)
    response = client.get(reverse("monitoring:overview"))
    assert response.status_code == 200
    rows = {snap.service: snap.shown_state for snap in response.context["breakers"]}
    assert rows == {"assemblyai": "closed", "openai": "forced_open", "paddle": "closed", "resend": "closed"}
    assert "forced_open" in response.text
    assert response.context["cache_stats"]["namespaces"]["views"]["hits"] >= 1


def test_non_staff_get_no_monitoring_page(client, member):
    client.force_login(member.user)
    assert client.get(reverse("monitoring:overview")).status_code == 302
