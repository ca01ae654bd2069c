-- Stage 7 (benchmark, the oracle): what each trial of a PR recorded.
-- benchmark_runs and benchmark_results come from sql/001; sql/017 (publish)
-- reads machine, machine_fingerprint, decision and passed and adds them with
-- IF NOT EXISTS too, so either file may run first.

-- One row per trial: where it ran (the machine's facts, also as columns to
-- group by), in which environment, which benchmarks and why, the tests on
-- both trees, the PR-level decision and how long it took.
ALTER TABLE benchmark_runs
  ADD COLUMN IF NOT EXISTS machine jsonb,                  -- {name, cpu_model, cores, kernel, python, executor, cpus, memory_mb, fingerprint}
  ADD COLUMN IF NOT EXISTS machine_fingerprint text,       -- sha256 of the facts that make timings comparable
  ADD COLUMN IF NOT EXISTS cpu_model text,
  ADD COLUMN IF NOT EXISTS cores integer,
  ADD COLUMN IF NOT EXISTS kernel text,
  ADD COLUMN IF NOT EXISTS python text,
  ADD COLUMN IF NOT EXISTS executor text,
  ADD COLUMN IF NOT EXISTS environment_digest text,        -- the verified environment it ran in (stage 6)
  ADD COLUMN IF NOT EXISTS cpus text,                      -- the cpuset it was pinned to
  ADD COLUMN IF NOT EXISTS k integer,                      -- benchmarks the PR-level gate corrected for
  ADD COLUMN IF NOT EXISTS selection_method text,          -- traced | all
  ADD COLUMN IF NOT EXISTS selection_reason text,
  ADD COLUMN IF NOT EXISTS selected text[],
  ADD COLUMN IF NOT EXISTS tests_summary jsonb,            -- which tests, how, per tree; the ones head broke
  ADD COLUMN IF NOT EXISTS decision text,
  ADD COLUMN IF NOT EXISTS wall_seconds double precision;

ALTER TABLE benchmark_runs DROP CONSTRAINT IF EXISTS benchmark_runs_decision_check;
ALTER TABLE benchmark_runs ADD CONSTRAINT benchmark_runs_decision_check CHECK (decision IN
  ('faster', 'no change', 'slower', 'tests failed', 'unmeasurable', 'failed'));

-- One row per benchmark of a trial (samples_base/_head, p_value, speedup,
-- speedup_lower_bound and error are sql/001's).
ALTER TABLE benchmark_results
  ADD COLUMN IF NOT EXISTS p_adjusted double precision,    -- after the family-wise correction over the run's k
  ADD COLUMN IF NOT EXISTS verdict text,
  ADD COLUMN IF NOT EXISTS unmeasurable boolean,
  ADD COLUMN IF NOT EXISTS passed boolean,                 -- passed the PR-level gate (only these make max_speedup)
  ADD COLUMN IF NOT EXISTS samples_per_side integer,
  ADD COLUMN IF NOT EXISTS seconds double precision;
