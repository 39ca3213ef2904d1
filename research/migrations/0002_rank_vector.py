"""Search speed: a compact ranking vector beside the full search vector.

`search_vector` (title A, tags B, the whole body C) stays what a query is matched against, through its GIN
index. `rank_vector` is what results are ranked with: the same title and tags, and only the body's first
1,500 characters, so it is small enough to stay in the row (storage MAIN: compressed in place
rather than moved to the TOAST table). Ranking a few thousand candidates then reads no TOAST at all
(docs/research.md, "Search"). Both are kept by the same trigger, on every write path.
"""

from django.contrib.postgres.search import SearchVectorField
from django.db import migrations

FUNCTIONS = r"""
CREATE FUNCTION research_rank_vector(title text, tags text[], body text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('english', coalesce(title, '')), 'A')
        || setweight(to_tsvector('english', coalesce(array_to_string(tags, ' '), '')), 'B')
        || setweight(to_tsvector('english',
            CASE WHEN length(coalesce(body, '')) <= 1500 THEN coalesce(body, '')
                 -- cut at a word boundary, never in the middle of a word
                 ELSE regexp_replace(left(body, 1501), '\S*$', '') END), 'C')
$$;

CREATE OR REPLACE FUNCTION research_note_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector :=
        setweight(to_tsvector('english', coalesce(NEW.title, '')), 'A')
        || setweight(to_tsvector('english', coalesce(array_to_string(NEW.tags, ' '), '')), 'B')
        || setweight(to_tsvector('english', coalesce(NEW.body, '')), 'C');
    NEW.rank_vector := research_rank_vector(NEW.title, NEW.tags, NEW.body);
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION research_publishednote_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector :=
        setweight(to_tsvector('english', coalesce(NEW.title, '')), 'A')
        || setweight(to_tsvector('english', coalesce(array_to_string(NEW.tags, ' '), '')), 'B')
        || setweight(to_tsvector('english', coalesce(NEW.body_text, '')), 'C');
    NEW.rank_vector := research_rank_vector(NEW.title, NEW.tags, NEW.body_text);
    RETURN NEW;
END $$;

ALTER TABLE research_note ALTER COLUMN rank_vector SET STORAGE MAIN;
ALTER TABLE research_publishednote ALTER COLUMN rank_vector SET STORAGE MAIN;
UPDATE research_note SET rank_vector = research_rank_vector(title, tags, body);
UPDATE research_publishednote SET rank_vector = research_rank_vector(title, tags, body_text);
"""

REVERSE = """
CREATE OR REPLACE FUNCTION research_note_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector :=
        setweight(to_tsvector('english', coalesce(NEW.title, '')), 'A')
        || setweight(to_tsvector('english', coalesce(array_to_string(NEW.tags, ' '), '')), 'B')
        || setweight(to_tsvector('english', coalesce(NEW.body, '')), 'C');
    RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION research_publishednote_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector :=
        setweight(to_tsvector('english', coalesce(NEW.title, '')), 'A')
        || setweight(to_tsvector('english', coalesce(array_to_string(NEW.tags, ' '), '')), 'B')
        || setweight(to_tsvector('english', coalesce(NEW.body_text, '')), 'C');
    RETURN NEW;
END $$;
DROP FUNCTION IF EXISTS research_rank_vector(text, text[], text);
"""


class Migration(migrations.Migration):

    dependencies = [
        ("research", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="note", name="rank_vector", field=SearchVectorField(editable=False, null=True, help_text="Ranking only (migration 0002)."),
        ),
        migrations.AddField(
            model_name="publishednote", name="rank_vector", field=SearchVectorField(editable=False, null=True, help_text="Ranking only (migration 0002)."),
        ),
        migrations.RunSQL(FUNCTIONS, REVERSE),
    ]
