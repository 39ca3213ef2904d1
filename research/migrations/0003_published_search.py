"""Search side table: `research_publishednotesearch`, one narrow row per published, not withdrawn note.

A trigger on `research_publishednote` keeps it in the same statement as the published copy (insert, every
update of what search reads, withdrawal, delete), whichever path writes the copy. Both vectors are stored
out of line and uncompressed (STORAGE EXTERNAL with toast_tuple_target 128), tags and symbols always in
the row (STORAGE MAIN), so the heap a broad word's matches are read from stays small (about 150 bytes a
row); rank_vector only where it differs from search_vector (a body over 1,500 characters). Existing published notes are copied in. The GIN index on the wide table's search_vector goes: search
matches on the side table (docs/research.md, "Search").
"""

import django.contrib.postgres.fields
import django.contrib.postgres.indexes
import django.contrib.postgres.search
import django.db.models.deletion
from django.db import migrations, models

STORAGE = """
ALTER TABLE research_publishednotesearch SET (toast_tuple_target = 128);
ALTER TABLE research_publishednotesearch
    ALTER COLUMN search_vector SET STORAGE EXTERNAL,
    ALTER COLUMN rank_vector SET STORAGE EXTERNAL,
    ALTER COLUMN tags SET STORAGE MAIN,
    ALTER COLUMN symbols SET STORAGE MAIN;
"""

SYNC = """
CREATE FUNCTION research_publishednote_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM research_publishednotesearch WHERE published_id = OLD.id;
        RETURN NULL;
    END IF;
    IF NEW.withdrawn_at IS NOT NULL THEN
        DELETE FROM research_publishednotesearch WHERE published_id = NEW.id;
        RETURN NULL;
    END IF;
    INSERT INTO research_publishednotesearch
        (published_id, author_id, audience, published_at, tags, symbols, search_vector, rank_vector)
    VALUES (NEW.id, NEW.author_id, NEW.audience, NEW.published_at, NEW.tags, NEW.symbols,
            NEW.search_vector, nullif(NEW.rank_vector, NEW.search_vector))
    ON CONFLICT (published_id) DO UPDATE SET
        author_id = EXCLUDED.author_id, audience = EXCLUDED.audience, published_at = EXCLUDED.published_at,
        tags = EXCLUDED.tags, symbols = EXCLUDED.symbols, search_vector = EXCLUDED.search_vector,
        rank_vector = EXCLUDED.rank_vector;
    RETURN NULL;
END $$;

-- AFTER: the BEFORE trigger (migrations 0001, 0002) has set both vectors. The outcome task's updates touch
-- none of these columns and do not fire it.
CREATE TRIGGER research_publishednote_search_sync
    AFTER INSERT OR DELETE
        OR UPDATE OF author_id, audience, published_at, withdrawn_at, title, tags, symbols, body_text
    ON research_publishednote
    FOR EACH ROW EXECUTE FUNCTION research_publishednote_search_sync();
"""

# The published notes that exist already (tests/research/test_search_side.py runs it too).
BACKFILL = """
INSERT INTO research_publishednotesearch
    (published_id, author_id, audience, published_at, tags, symbols, search_vector, rank_vector)
SELECT id, author_id, audience, published_at, tags, symbols, search_vector,
    nullif(rank_vector, search_vector)
FROM research_publishednote
WHERE withdrawn_at IS NULL;
"""

DROP_SYNC = """
DROP TRIGGER IF EXISTS research_publishednote_search_sync ON research_publishednote;
DROP FUNCTION IF EXISTS research_publishednote_search_sync();
"""


class Migration(migrations.Migration):

    dependencies = [
        ("research", "0002_rank_vector"),
    ]

    operations = [
        migrations.CreateModel(
            name="PublishedNoteSearch",
            fields=[
                ("published", models.OneToOneField(help_text="The published copy; its trigger deletes this row with it.", on_delete=django.db.models.deletion.DO_NOTHING, primary_key=True, related_name="+", serialize=False, to="research.publishednote")),
                ("author_id", models.BigIntegerField()),
                ("audience", models.CharField(choices=[("members", "Every signed-in member"), ("paying", "Members on a paid plan")], max_length=16)),
                ("published_at", models.DateTimeField()),
                ("tags", django.contrib.postgres.fields.ArrayField(base_field=models.CharField(max_length=32), blank=True, default=list, size=None)),
                ("symbols", django.contrib.postgres.fields.ArrayField(base_field=models.CharField(max_length=32), blank=True, default=list, size=None)),
                ("search_vector", django.contrib.postgres.search.SearchVectorField()),
                ("rank_vector", django.contrib.postgres.search.SearchVectorField(help_text="NULL when it equals search_vector (a body under 1,500 characters): rank with coalesce(rank_vector, search_vector).", null=True)),
            ],
        ),
        migrations.RunSQL(STORAGE, migrations.RunSQL.noop),
        migrations.RunSQL(SYNC, DROP_SYNC),
        # Copy in the existing published notes before the indexes exist: one index build, not row by row.
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.RemoveIndex(
            model_name="publishednote",
            name="research_published_search",
        ),
        migrations.AddIndex(
            model_name="publishednotesearch",
            index=django.contrib.postgres.indexes.GinIndex(fields=["search_vector"], name="research_search_vector"),
        ),
        migrations.AddIndex(
            model_name="publishednotesearch",
            index=django.contrib.postgres.indexes.GinIndex(fields=["tags"], name="research_search_tags"),
        ),
        migrations.AddIndex(
            model_name="publishednotesearch",
            index=django.contrib.postgres.indexes.GinIndex(fields=["symbols"], name="research_search_symbols"),
        ),
        migrations.AddIndex(
            model_name="publishednotesearch",
            index=models.Index(fields=["author_id"], name="research_search_author"),
        ),
    ]
