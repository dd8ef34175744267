"""Full-text search over transcripts (calls/search.py).

On PostgreSQL: `calls_search_config(language)` maps a transcript's language to
a text search configuration (the same table as calls.search.SEARCH_CONFIGS; a
test keeps them equal), a trigger keeps `search_vector` current from the
utterances' text, and a GIN index serves `@@`. The vector is built with
jsonb_to_tsvector over the array of texts, which leaves a gap in the positions
between two utterances, so a phrase never matches across turns. The column is
compressed with lz4 where the server has it, and kept inline in the heap
(toast_tuple_target): a phrase query rechecks every candidate's vector and the
ranking reads every match's, so each read should be one heap page and a fast
decompression.

On SQLite the column exists and stays empty: search falls back to a contains
match (calls.search).
"""

import django.contrib.postgres.search
from django.db import migrations, models

LANGUAGES = {
    "en": "english",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "it": "italian",
    "pt": "portuguese",
    "nl": "dutch",
}

CONFIG_FUNCTION = """
CREATE OR REPLACE FUNCTION calls_search_config(language text) RETURNS regconfig
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE lower(split_part(coalesce(language, ''), '-', 1))
    {whens}
    WHEN '' THEN 'english'::regconfig
    ELSE 'simple'::regconfig
  END
$$
""".format(whens="\n    ".join(f"WHEN '{code}' THEN '{config}'::regconfig" for code, config in LANGUAGES.items()))

TRIGGER = """
CREATE OR REPLACE FUNCTION calls_transcript_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.search_vector := jsonb_to_tsvector(
    calls_search_config(NEW.language),
    jsonb_path_query_array(NEW.utterances, '$[*].text'),
    '["string"]'
  );
  RETURN NEW;
END
$$;
CREATE TRIGGER calls_transcript_search_vector
  BEFORE INSERT OR UPDATE OF utterances, language, search_vector ON calls_transcript
  FOR EACH ROW EXECUTE FUNCTION calls_transcript_search_vector();
"""


def create_search(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(CONFIG_FUNCTION)
    schema_editor.execute(TRIGGER)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)")
        if cursor.fetchone():
            schema_editor.execute("ALTER TABLE calls_transcript ALTER COLUMN search_vector SET COMPRESSION lz4")
    # Keep rows up to 4 kB in the heap page: the vector (about 2 kB compressed)
    # then stays inline while the larger utterances go to TOAST, so a recheck
    # or a rank reads one heap page instead of a TOAST index and its chunks.
    schema_editor.execute("ALTER TABLE calls_transcript SET (toast_tuple_target = 4080)")
    # Existing transcripts: touching the text fires the trigger.
    schema_editor.execute("UPDATE calls_transcript SET utterances = utterances")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS transcript_search_gin ON calls_transcript USING gin (search_vector)"
    )


def drop_search(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS transcript_search_gin")
    schema_editor.execute("DROP TRIGGER IF EXISTS calls_transcript_search_vector ON calls_transcript")
    schema_editor.execute("DROP FUNCTION IF EXISTS calls_transcript_search_vector()")
    schema_editor.execute("DROP FUNCTION IF EXISTS calls_search_config(text)")


class Migration(migrations.Migration):
    dependencies = [("calls", "0007_webhooks_out")]

    operations = [
        migrations.AlterField(
            model_name="transcript",
            name="language",
            field=models.CharField(default="en", help_text="ISO 639-1 code, e.g. en, de, pt-BR.", max_length=16),
        ),
        migrations.AddField(
            model_name="transcript",
            name="search_vector",
            field=django.contrib.postgres.search.SearchVectorField(editable=False, null=True),
        ),
        migrations.RunPython(create_search, drop_search),
    ]
