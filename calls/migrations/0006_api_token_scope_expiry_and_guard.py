"""API tokens get a scope and an expiry (existing tokens: one year after
creation), and a database trigger that makes revocation final: once
revoked_at is set it never changes, a token never moves to another user,
organization or secret, and an expiry is never pushed later or removed.
A trigger (not a save() guard) because QuerySet.update() and raw SQL skip
save(); PostgreSQL raises check_violation, SQLite aborts, Django raises
IntegrityError for both."""

from datetime import timedelta

from django.db import migrations, models

POSTGRESQL_GUARD = ["""
CREATE OR REPLACE FUNCTION calls_apitoken_guard() RETURNS trigger AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
        RAISE EXCEPTION 'API token %: a revoked token stays revoked', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.user_id <> OLD.user_id OR NEW.organization_id <> OLD.organization_id
            OR NEW.token_hash <> OLD.token_hash THEN
        RAISE EXCEPTION 'API token %: user, organization and secret never change', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.expires_at IS NOT NULL AND (NEW.expires_at IS NULL OR NEW.expires_at > OLD.expires_at) THEN
        RAISE EXCEPTION 'API token %: an expiry is never extended', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql
""", """
CREATE TRIGGER calls_apitoken_guard BEFORE UPDATE ON calls_apitoken
    FOR EACH ROW EXECUTE FUNCTION calls_apitoken_guard()
"""]
POSTGRESQL_UNGUARD = [
    "DROP TRIGGER IF EXISTS calls_apitoken_guard ON calls_apitoken",
    "DROP FUNCTION IF EXISTS calls_apitoken_guard()",
]
SQLITE_GUARD = ["""
CREATE TRIGGER calls_apitoken_guard BEFORE UPDATE ON calls_apitoken FOR EACH ROW
WHEN (OLD.revoked_at IS NOT NULL AND (NEW.revoked_at IS NULL OR NEW.revoked_at <> OLD.revoked_at))
    OR NEW.user_id <> OLD.user_id OR NEW.organization_id <> OLD.organization_id
    OR NEW.token_hash <> OLD.token_hash
    OR (OLD.expires_at IS NOT NULL AND (NEW.expires_at IS NULL OR NEW.expires_at > OLD.expires_at))
BEGIN
    SELECT RAISE(ABORT, 'API token: revocation is final; user, organization, secret and expiry never loosen');
END
"""]
SQLITE_UNGUARD = ["DROP TRIGGER IF EXISTS calls_apitoken_guard"]


def run(schema_editor, statements):
    for statement in statements:
        # params=None: the PL/pgSQL's % placeholders are not Python ones.
        schema_editor.execute(statement, params=None)


def install_guard(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor not in {"postgresql", "sqlite"}:
        raise RuntimeError(f"No API token guard for the {vendor} database")
    run(schema_editor, POSTGRESQL_GUARD if vendor == "postgresql" else SQLITE_GUARD)


def remove_guard(apps, schema_editor):
    run(schema_editor, POSTGRESQL_UNGUARD if schema_editor.connection.vendor == "postgresql" else SQLITE_UNGUARD)


def expire_existing_tokens(apps, schema_editor):
    ApiToken = apps.get_model("calls", "ApiToken")
    for token in ApiToken.objects.filter(expires_at__isnull=True).only("pk", "created_at"):
        ApiToken.objects.filter(pk=token.pk).update(expires_at=token.created_at + timedelta(days=365))


class Migration(migrations.Migration):

    dependencies = [
        ('calls', '0005_dashboard_filter_sort_indexes'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='apitoken',
            options={'ordering': ['-created_at'], 'permissions': [('revoke_apitoken', 'Can revoke API tokens')]},
        ),
        migrations.AddField(
            model_name='apitoken',
            name='expires_at',
            field=models.DateTimeField(blank=True, help_text='Empty: never expires.', null=True),
        ),
        migrations.AddField(
            model_name='apitoken',
            name='scope',
            field=models.CharField(choices=[('read', 'Read'), ('write', 'Read and write')], default='read', max_length=8),
        ),
        migrations.RunPython(expire_existing_tokens, migrations.RunPython.noop),
        migrations.RunPython(install_guard, remove_guard),
    ]
