"""A failed organization delete does not leave its rollups frozen."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.db.models.signals import pre_delete

from analytics.models import DailyRollup
from calls.tenancy.models import Organization
from tests import factories


class DeleteRefused(Exception):
    pass


def test_rollups_are_written_again_after_an_organization_delete_fails(org, member):
    def refuse(sender, instance, **kwargs):
        raise DeleteRefused  # after analytics' pre_delete marked the organization

    pre_delete.connect(refuse, sender=Organization, dispatch_uid="test-refuse-org-delete")
    try:
        with pytest.raises(DeleteRefused), transaction.atomic():
            org.delete()
    finally:
        pre_delete.disconnect(sender=Organization, dispatch_uid="test-refuse-org-delete")
    assert Organization.objects.filter(pk=org.pk).exists()
    factories.make_call(org, rep=member.user)
    assert DailyRollup.objects.filter(organization=org, calls=1).exists()


def test_deleting_an_organization_with_calls_still_succeeds(org, member):
    factories.make_call(org, rep=member.user)
    org.delete()
    assert not DailyRollup.objects.filter(organization_id=org.pk).exists()
