-- Hardening for long, costly stages: re-requests, a circuit breaker per
-- service, failed rows kept out of the claim path, host-local resources.

-- A person set a stage's output back to NULL while the row was running: the
-- running attempt's result is superseded and the row runs once more.
ALTER TABLE leases ADD COLUMN rerun_requested boolean NOT NULL DEFAULT false;
-- Heartbeats, releases and checkpoints find a lease by run id or worker.
CREATE UNIQUE INDEX leases_run_id ON leases (run_id);
CREATE INDEX leases_worker ON leases (worker_id) WHERE worker_id IS NOT NULL;
CREATE INDEX leases_waiting ON leases (stage, retry_at) WHERE worker_id IS NULL AND failed_at IS NULL;

ALTER TABLE stage_runs DROP CONSTRAINT stage_runs_outcome_check;
ALTER TABLE stage_runs ADD CONSTRAINT stage_runs_outcome_check CHECK (outcome IN
  ('succeeded', 'error', 'failed', 'rate_limited', 'service_down', 'superseded', 'lease_expired', 'released'));
CREATE INDEX stage_runs_stage_finished ON stage_runs (stage, finished_at);

-- A pause is either a service's own "wait until" (rate_limit) or our circuit
-- breaker (breaker): the service is down, so its group waits with growing
-- pauses instead of failing the backlog row by row. trips counts the
-- breaker's consecutive openings; a success of the group resets it.
ALTER TABLE rate_limit_pauses
  ADD COLUMN kind text NOT NULL DEFAULT 'rate_limit' CHECK (kind IN ('rate_limit', 'breaker')),
  ADD COLUMN trips integer NOT NULL DEFAULT 0;

-- What the stage declarations say beyond their predicates.
ALTER TABLE stages
  ADD COLUMN outputs text[] NOT NULL DEFAULT '{}',
  ADD COLUMN wake_on text[] NOT NULL DEFAULT '{}',
  ADD COLUMN order_sql text NOT NULL DEFAULT 's.id';

-- The stages that gave up on a row, kept on the row itself (by a trigger on
-- leases) so each stage's partial pending index leaves failed rows out: a
-- claim never wades through thousands of failed rows to find a pending one.
ALTER TABLE repositories ADD COLUMN failed_stages text[] NOT NULL DEFAULT '{}';
ALTER TABLE pull_requests ADD COLUMN failed_stages text[] NOT NULL DEFAULT '{}';
ALTER TABLE discovery_runs ADD COLUMN failed_stages text[] NOT NULL DEFAULT '{}';

DROP INDEX pull_requests_pending_classify;
CREATE INDEX pull_requests_pending_classify ON pull_requests (id)
  WHERE is_performance_commit_symbolic AND is_performance_commit IS NULL
    AND NOT (failed_stages @> ARRAY['classify_prs']::text[]);

-- Host-local resources (e.g. the CPUs benchmarks are pinned to): a holder is
-- an attempt (run_id); a row whose lease is gone no longer holds anything.
CREATE TABLE host_resources (
  host              text NOT NULL,
  resource          text NOT NULL,
  run_id            bigint NOT NULL,
  stage             text NOT NULL,
  mode              text NOT NULL CHECK (mode IN ('exclusive', 'shared')),
  state             text NOT NULL CHECK (state IN ('held', 'waiting')),
  since             timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, resource)
);
CREATE INDEX host_resources_by_host ON host_resources (host, resource);
