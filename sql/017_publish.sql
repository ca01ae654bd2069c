-- Stage 8 (publish): what was published, and the facts of stage 7's runs it reads.

-- Stage 7 writes these (its own migration, sql/016, adds them; IF NOT EXISTS
-- lets this file run before or after it): the machine a run measured on (its
-- facts: CPU model, cores, kernel, Python, executor, name), a stable
-- fingerprint of them, the run's PR-level decision, and which benchmarks
-- passed the PR-level gate (their speedups are benchmark_results.speedup and
-- speedup_lower_bound).
ALTER TABLE benchmark_runs
  ADD COLUMN IF NOT EXISTS machine jsonb,
  ADD COLUMN IF NOT EXISTS machine_fingerprint text,
  ADD COLUMN IF NOT EXISTS decision text;
ALTER TABLE benchmark_results
  ADD COLUMN IF NOT EXISTS passed boolean;

-- One row per published PR and dataset: the record exactly as published. A
-- month's Parquet file is rebuilt from these rows (every published row of the
-- month), never from one run's rows alone; a row is written only after every
-- target took the file that holds it.
CREATE TABLE published_tasks (
  dataset text NOT NULL,
  pull_request_id bigint NOT NULL REFERENCES pull_requests (id) ON DELETE CASCADE,
  month text NOT NULL CHECK (month ~ '^[0-9]{4}-[0-9]{2}$'),   -- of the merge date (UTC)
  task_id text NOT NULL,
  record jsonb NOT NULL,                  -- one Parquet row (src/domain/publish-record.ts)
  targets jsonb NOT NULL,                 -- what each target answered (path, hub commit, pushed image)
  published_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (dataset, pull_request_id)
);
CREATE INDEX published_tasks_month ON published_tasks (dataset, month);
