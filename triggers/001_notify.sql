-- Doorbells. Statement-level triggers send a small constant payload (table or
-- table.column) on the 'perfmine' channel, so Postgres folds duplicates within
-- a transaction. They never do the work: the columns are the truth.
-- This file is re-applied whenever it changes (repeatable), so it must be idempotent.

CREATE OR REPLACE FUNCTION perfmine_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('perfmine', TG_ARGV[0]);
  RETURN NULL;
END $$;

-- perfmine_doorbells(table, columns): an INSERT/DELETE doorbell named after the
-- table, and one UPDATE OF doorbell per spine column named table.column.
CREATE OR REPLACE FUNCTION perfmine_doorbells(tbl text, cols text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE c text;
BEGIN
  EXECUTE format('DROP TRIGGER IF EXISTS perfmine_rows ON %I', tbl);
  EXECUTE format('CREATE TRIGGER perfmine_rows AFTER INSERT OR DELETE ON %I '
                 'FOR EACH STATEMENT EXECUTE FUNCTION perfmine_notify(%L)', tbl, tbl);
  FOREACH c IN ARRAY cols LOOP
    EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', 'perfmine_' || c, tbl);
    EXECUTE format('CREATE TRIGGER %I AFTER UPDATE OF %I ON %I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION perfmine_notify(%L)',
                   'perfmine_' || c, c, tbl, tbl || '.' || c);
  END LOOP;
END $$;

SELECT perfmine_doorbells('repositories', ARRAY[
  'metadata_fetched_at', 'ingest_enabled', 'last_scraped_at', 'scrape_cursor']);

SELECT perfmine_doorbells('pull_requests', ARRAY[
  'is_performance_commit_symbolic', 'patch', 'is_performance_commit', 'classification',
  'difficulty', 'rendered_problem', 'container_name', 'max_speedup', 'benchmarked_at', 'benchmark_decision',
  'published_at']);

SELECT perfmine_doorbells('packages', ARRAY['can_install', 'env_payload']);
SELECT perfmine_doorbells('candidate_prs', ARRAY['extracted']);
SELECT perfmine_doorbells('candidate_containers', ARRAY['succeeded']);
SELECT perfmine_doorbells('benchmark_runs', ARRAY['succeeded', 'max_speedup']);

-- People pause, resume and re-size stages by editing this table.
SELECT perfmine_doorbells('stage_settings', ARRAY['paused', 'concurrency']);
