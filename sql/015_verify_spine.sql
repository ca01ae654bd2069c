-- Verify and ship, stages 7 (benchmark) and 8 (publish): the spine columns
-- they write. Details of runs and publications come in later migrations.

-- Stage 7: the PR-level decision of the oracle (a decision per PR, not per
-- benchmark). benchmarked_at (sql/001) says it was decided; max_speedup and
-- its lower bound are over the benchmarks that passed the PR-level gate only.
ALTER TABLE pull_requests
  ADD COLUMN max_speedup_lower_bound double precision,
  ADD COLUMN benchmark_decision text CHECK (benchmark_decision IN
    ('faster', 'no change', 'slower', 'tests failed', 'unmeasurable', 'failed')),
  ADD COLUMN benchmark_reason text,
  ADD COLUMN benchmark_run_id bigint REFERENCES benchmark_runs (id) ON DELETE SET NULL;

-- Stage 8: decided (published, or why not), and published only after every target succeeded.
ALTER TABLE pull_requests
  ADD COLUMN publish_decided_at timestamptz,
  ADD COLUMN publish_reason text;

DROP INDEX pull_requests_pending_benchmark;
CREATE INDEX pull_requests_pending_benchmark ON pull_requests (id)
  WHERE container_name IS NOT NULL AND benchmarked_at IS NULL
    AND NOT (failed_stages @> ARRAY['benchmark']::text[]);
DROP INDEX pull_requests_unpublished;
CREATE INDEX pull_requests_pending_publish ON pull_requests (id)
  WHERE benchmark_decision = 'faster' AND publish_decided_at IS NULL
    AND NOT (failed_stages @> ARRAY['publish']::text[]);
