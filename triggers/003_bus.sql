-- Bus triggers and the funnel (repeatable: re-applied whenever this file
-- changes, so everything here must be idempotent).

-- failed_stages on the subject row mirrors the failed leases, so partial
-- pending indexes can leave failed rows out of every claim.
CREATE OR REPLACE FUNCTION perfmine_sync_failed_stages() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE l leases;
BEGIN
  l := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  IF to_regclass(quote_ident(l.subject_table)) IS NULL THEN RETURN NULL; END IF;
  IF TG_OP = 'UPDATE' AND NEW.failed_at IS NOT NULL THEN
    EXECUTE format('UPDATE %I SET failed_stages = array_append(failed_stages, $1) '
                   'WHERE id = $2 AND NOT failed_stages @> ARRAY[$1]', l.subject_table)
      USING l.stage, l.subject_id;
  ELSE
    EXECUTE format('UPDATE %I SET failed_stages = array_remove(failed_stages, $1) '
                   'WHERE id = $2 AND failed_stages @> ARRAY[$1]', l.subject_table)
      USING l.stage, l.subject_id;
  END IF;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS perfmine_failed_stages_update ON leases;
CREATE TRIGGER perfmine_failed_stages_update AFTER UPDATE OF failed_at ON leases
  FOR EACH ROW WHEN (OLD.failed_at IS DISTINCT FROM NEW.failed_at)
  EXECUTE FUNCTION perfmine_sync_failed_stages();
DROP TRIGGER IF EXISTS perfmine_failed_stages_delete ON leases;
CREATE TRIGGER perfmine_failed_stages_delete AFTER DELETE ON leases
  FOR EACH ROW WHEN (OLD.failed_at IS NOT NULL)
  EXECUTE FUNCTION perfmine_sync_failed_stages();

-- A re-request: someone set a stage's output column (TG_ARGV[0]) back to
-- NULL. The row's failed or waiting lease of every stage with that output is
-- cleared (a fresh attempt budget, ready now); a lease held by a running
-- attempt is flagged so its result is superseded and the row runs once more.
CREATE OR REPLACE FUNCTION perfmine_rerequest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE leases l SET
    failed_at = NULL, retry_at = NULL, attempts = 0,
    rerun_requested = (l.worker_id IS NOT NULL),
    last_error = 're-requested: ' || TG_TABLE_NAME || '.' || TG_ARGV[0] || ' set to NULL'
  FROM stages st
  WHERE st.subject_table = TG_TABLE_NAME AND TG_ARGV[0] = ANY (st.outputs)
    AND l.stage = st.name AND l.subject_id = NEW.id;
  RETURN NULL;
END $$;

-- Doorbell and re-request triggers that the stage declarations ask for are
-- made by the bus at registration; these create one only where it is missing.
CREATE OR REPLACE FUNCTION perfmine_ensure_doorbell(tbl text, col text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE name text := CASE WHEN col IS NULL THEN 'perfmine_rows' ELSE 'perfmine_' || col END;
BEGIN
  IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass(quote_ident(tbl)) AND tgname = name) THEN
    RETURN false;
  END IF;
  IF col IS NULL THEN
    EXECUTE format('CREATE TRIGGER perfmine_rows AFTER INSERT OR DELETE ON %I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION perfmine_notify(%L)', tbl, tbl);
  ELSE
    EXECUTE format('CREATE TRIGGER %I AFTER UPDATE OF %I ON %I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION perfmine_notify(%L)', name, col, tbl, tbl || '.' || col);
  END IF;
  RETURN true;
END $$;

CREATE OR REPLACE FUNCTION perfmine_ensure_rerequest(tbl text, col text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE name text := 'perfmine_rerequest_' || col;
BEGIN
  IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass(quote_ident(tbl)) AND tgname = name) THEN
    RETURN false;
  END IF;
  EXECUTE format('CREATE TRIGGER %I AFTER UPDATE OF %I ON %I FOR EACH ROW WHEN (NEW.%I IS NULL) '
                 'EXECUTE FUNCTION perfmine_rerequest(%L)', name, col, tbl, col, col);
  RETURN true;
END $$;

-- The funnel, one row per registered stage. Predicates live in the stages
-- table, so this uses dynamic SQL; the view below is what people query.
-- pending: ready and unclaimed; running: held; retrying: waiting for a retry
-- (of rows that still need the stage); failed: given up on, until
-- `perfmine retry` or a re-request.
DROP VIEW IF EXISTS funnel;
DROP FUNCTION IF EXISTS perfmine_funnel();
CREATE FUNCTION perfmine_funnel()
RETURNS TABLE (
  ordinal integer, stage text, pending bigint, running bigint, retrying bigint,
  failed bigint, done bigint, oldest_pending_age interval, paused boolean,
  rate_limited_until timestamptz, pause_reason text
) LANGUAGE plpgsql STABLE
-- Each count is a small index scan: parallel workers only add start-up cost
-- (measured: the largest done count at 1M PRs went from ~120 ms to ~20 ms).
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE s record;
BEGIN
  FOR s IN SELECT * FROM stages ORDER BY stages.ordinal, stages.name LOOP
    ordinal := s.ordinal;
    stage := s.name;
    EXECUTE format(
      'SELECT count(*), now() - min(%s) FROM %I s WHERE (%s) AND NOT (s.failed_stages @> ARRAY[$1]) AND NOT EXISTS '
      '(SELECT 1 FROM leases l WHERE l.stage = $1 AND l.subject_id = s.id)',
      s.since_sql, s.subject_table, s.pending_sql)
      INTO pending, oldest_pending_age USING s.name;
    EXECUTE format('SELECT count(*) FROM %I s WHERE (%s)', s.subject_table, s.done_sql) INTO done;
    SELECT count(*) INTO running FROM leases l WHERE l.stage = s.name AND l.worker_id IS NOT NULL;
    EXECUTE format(
      'SELECT count(*) FILTER (WHERE l.failed_at IS NULL), count(*) FILTER (WHERE l.failed_at IS NOT NULL) '
      'FROM leases l JOIN %I s ON s.id = l.subject_id WHERE l.stage = $1 AND l.worker_id IS NULL AND (%s)',
      s.subject_table, s.pending_sql)
      INTO retrying, failed USING s.name;
    SELECT coalesce(ss.paused, false) INTO paused FROM stage_settings ss WHERE ss.stage = s.name;
    paused := coalesce(paused, false);
    SELECT p.until, p.group_name || ': ' || CASE WHEN p.kind = 'breaker' THEN 'service down' ELSE 'rate limited' END
             || coalesce(' (' || p.reason || ')', '')
      INTO rate_limited_until, pause_reason
      FROM rate_limit_pauses p
      WHERE p.group_name = ANY (s.rate_limit_groups) AND p.until > now()
      ORDER BY p.until DESC LIMIT 1;
    RETURN NEXT;
    rate_limited_until := NULL;
    pause_reason := NULL;
  END LOOP;
END $$;

CREATE VIEW funnel AS SELECT * FROM perfmine_funnel();
