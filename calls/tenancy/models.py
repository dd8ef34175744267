"""Tenancy: organizations, their members and personal API tokens. Every call
belongs to an organization; a person sees only the organizations they are a
member of."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Self

from django.conf import settings
from django.db import models
from django.db.models.signals import post_delete, pre_save
from django.dispatch import receiver
from django.utils import timezone


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MembershipQuerySet(models.QuerySet):
    def for_user(self, user: settings.AUTH_USER_MODEL) -> Self:
        return self.filter(user=user).select_related("organization")


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        MANAGER = "manager", "Manager"
        REP = "rep", "Rep"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.REP)
    created_at = models.DateTimeField(default=timezone.now)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="membership_unique_user_org")]
        ordering = ["organization__name"]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def can_manage(self) -> bool:
        return self.role in {self.Role.ADMIN, self.Role.MANAGER}


TOKEN_PREFIX = "ciq_"


def hash_token(raw_token: str) -> str:
    # Tokens are 256 random bits, so a plain SHA-256 is enough: no salt or
    # slow hash is needed to resist guessing, and lookups stay one indexed read.
    return hashlib.sha256(raw_token.encode()).hexdigest()


DEFAULT_TOKEN_LIFETIME = timedelta(days=365)


class ApiTokenQuerySet(models.QuerySet):
    def active(self) -> Self:
        """Not revoked and not expired."""
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=timezone.now())
        )

    def revoke(self) -> int:
        """Revoke every token of this queryset that is not revoked yet; returns how many.
        Already revoked tokens keep their first revocation time."""
        return self.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


class ApiToken(models.Model):
    """A personal API token for `Authorization: Bearer` on the JSON API (/api/
    only), scoped to one organization the user belongs to. Only its SHA-256 is
    stored. A token expires (`expires_at`; None = never) and is revoked when its
    membership ends. Revocation is final: the database refuses to clear or move
    `revoked_at`, or to re-point a token at another user, organization or hash
    (a trigger, migration 0004), so neither the admin, a queryset update nor
    raw SQL can bring a token back."""

    class Scope(models.TextChoices):
        READ = "read", "Read"
        # For a write API to come; no page issues it yet, and the middleware
        # lets a read token make only GET, HEAD and OPTIONS requests.
        WRITE = "write", "Read and write"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="First characters, shown so people can tell tokens apart.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.READ)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        permissions = [("revoke_apitoken", "Can revoke API tokens")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(
        cls,
        *,
        user: settings.AUTH_USER_MODEL,
        organization: Organization,
        name: str,
        lifetime: timedelta | None = DEFAULT_TOKEN_LIFETIME,
        scope: str = Scope.READ,
    ) -> tuple[Self, str]:
        """Create a token and return it with its raw value, which is shown once
        and never stored. `lifetime=None` makes a token that never expires."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = timezone.now()
        token = cls.objects.create(
            user=user,
            organization=organization,
            name=name,
            prefix=raw[:10],
            token_hash=hash_token(raw),
            scope=scope,
            created_at=now,
            expires_at=None if lifetime is None else now + lifetime,
        )
        return token, raw

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return not self.is_revoked and not self.is_expired

    @property
    def status(self) -> str:
        return "revoked" if self.is_revoked else "expired" if self.is_expired else "active"

    @property
    def allows_writes(self) -> bool:
        return self.scope == self.Scope.WRITE

    def revoke(self) -> None:
        if self.revoked_at is None:
            ApiToken.objects.filter(pk=self.pk).revoke()
            self.refresh_from_db(fields=["revoked_at"])


# A membership that ends takes its tokens with it, for good: re-adding the
# person makes a new membership, and revoked tokens never come back.
@receiver(post_delete, sender=Membership, dispatch_uid="revoke_tokens_of_ended_membership")
def revoke_tokens_of_ended_membership(sender: type[Membership], instance: Membership, **kwargs: object) -> None:
    ApiToken.objects.filter(user_id=instance.user_id, organization_id=instance.organization_id).revoke()


@receiver(pre_save, sender=Membership, dispatch_uid="revoke_tokens_of_moved_membership")
def revoke_tokens_of_moved_membership(sender: type[Membership], instance: Membership, **kwargs: object) -> None:
    """A membership re-pointed at another user or organization (the admin allows
    it) ends the old one: the old pair's tokens are revoked."""
    if instance.pk is None or kwargs.get("raw"):
        return
    old = Membership.objects.filter(pk=instance.pk).values("user_id", "organization_id").first()
    if old and (old["user_id"], old["organization_id"]) != (instance.user_id, instance.organization_id):
        ApiToken.objects.filter(user_id=old["user_id"], organization_id=old["organization_id"]).revoke()
