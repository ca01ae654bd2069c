/**
 * Rows a real pipeline leaves behind for stage 8 to publish: the repository,
 * stage 4's package (pins), the PR with its problem and patch, stage 6's
 * verified attempt and environment, and what stage 7 writes (a successful
 * benchmark_runs row with its machine and decision, per-benchmark results,
 * the PR's benchmark_decision, run id and speedups), written directly so the
 * publish tests need not run stage 7.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../../src/db/connect.js';

export interface PublishablePr {
  number: number;
  mergedAt: string;
  owner?: string;
  repo?: string;
  executor?: 'local' | 'docker';
  environmentDigest?: string;
  containerName?: string;
  machine?: Record<string, unknown>;
  machineFingerprint?: string;
  maxSpeedup?: number;
  lowerBound?: number;
  renderedProblem?: string;
  patch?: string;
  buildScript?: string;
  pins?: string[];
}

export interface InsertedPr {
  id: number;
  runId: number;
  taskId: string;
  pins: string[];
  buildScript: string;
  renderedProblem: string;
  patch: string;
  environmentDigest: string;
}

const sha = () => randomBytes(20).toString('hex');

export async function insertPublishablePr(db: Db, p: PublishablePr): Promise<InsertedPr> {
  const owner = p.owner ?? 'acme';
  const repo = p.repo ?? 'fastlib';
  const existing = (await sql<{ id: number }>`SELECT id FROM repositories WHERE owner = ${owner} AND name = ${repo}`.execute(db)).rows[0];
  const repoId = existing?.id ?? (await sql<{ id: number }>`
    INSERT INTO repositories (owner, name, metadata_fetched_at, last_scraped_at) VALUES (${owner}, ${repo}, now(), now())
    RETURNING id`.execute(db)).rows[0].id;
  const mergeSha = sha();
  const baseSha = sha();
  const pins = p.pins ?? [`perfmine-testdep==1.0 --hash=sha256:${randomBytes(32).toString('hex')}`];
  const pkg = (await sql<{ id: number }>`
    INSERT INTO packages (repository_id, merge_commit_sha, python_version, env_payload, can_install)
    VALUES (${repoId}, ${mergeSha}, '3.11', ${JSON.stringify(pins)}::jsonb, true) RETURNING id`.execute(db)).rows[0].id;
  const executor = p.executor ?? 'local';
  const digest = p.environmentDigest ?? `sha256:${randomBytes(32).toString('hex')}`;
  const container = p.containerName ?? (executor === 'local' ? `local:/data/envs/builds/pr${p.number}/venv#/data/envs/builds/pr${p.number}/src` : `perfmine-pr:pr${p.number}@${digest}`);
  const renderedProblem = p.renderedProblem ?? `Make \`value()\` of fastlib faster (task ${p.number}).`;
  const patch = p.patch ?? `diff --git a/fastlib/core.py b/fastlib/core.py\n--- a/fastlib/core.py\n+++ b/fastlib/core.py\n@@ -1 +1 @@\n-slow(${p.number})\n+fast(${p.number})\n`;
  const buildScript = p.buildScript ?? 'python setup.py build_ext --inplace\n';
  const prId = (await sql<{ id: number }>`
    INSERT INTO pull_requests (repository_id, number, title, merged_at, merge_commit_sha, base_sha, patch,
      is_performance_commit_symbolic, is_performance_commit, classification, difficulty, package_id, can_install, env_resolved_at,
      rendered_problem, problem_rendered_at, container_name, environment_digest, executor, env_built_at)
    VALUES (${repoId}, ${p.number}, ${`Speed up value() #${p.number}`}, ${p.mergedAt}, ${mergeSha}, ${baseSha}, ${patch},
      true, true, 'use_better_algorithm', 'easy', ${pkg}, true, now(), ${renderedProblem}, now(), ${container}, ${digest}, ${executor}, now())
    RETURNING id`.execute(db)).rows[0].id;
  await sql`
    INSERT INTO candidate_containers (pull_request_id, repository_id, commit_sha, attempt_no, strategy, build_script, outcome, succeeded,
      executor, python_version, env_ref, env_digest, reusable)
    VALUES (${prId}, ${repoId}, ${baseSha}, 1, 'default', ${buildScript}, 'verified', true, ${executor}, '3.11', ${container}, ${digest}, true)`.execute(db);

  // Stage 7: one successful run that passed the PR-level gate, two benchmarks passing, one not.
  const maxSpeedup = p.maxSpeedup ?? 4.5;
  const lower = p.lowerBound ?? 3.9;
  const machine = p.machine ?? { name: 'bench-1', cpu_model: 'Test CPU', cores: 2, kernel: '6.1.0', python: '3.11.2', executor };
  const runId = (await sql<{ id: number }>`
    INSERT INTO benchmark_runs (pull_request_id, container_name, succeeded, reason, max_speedup, max_speedup_lower_bound, geomean_speedup,
      tests_ok, finished_at, machine, machine_fingerprint, decision)
    VALUES (${prId}, ${container}, true, 'faster: 2 of 3 benchmarks passed the PR-level gate', ${maxSpeedup}, ${lower}, 2.1, true, now(),
      ${JSON.stringify(machine)}::jsonb, ${p.machineFingerprint ?? `fp-${String(machine.name)}`}, 'faster')
    RETURNING id`.execute(db)).rows[0].id;
  const results: [string, unknown, number, number, boolean][] = [
    ['benchmarks.TimeValue.time_value', null, maxSpeedup, lower, true],
    ['benchmarks.TimeValue.time_many', ['1000'], 1.8, Math.min(1.5, lower), true],
    ['benchmarks.TimeOther.time_unrelated', null, 1.01, 0.97, false],
  ];
  for (const [name, params, speedup, lb, passed] of results) {
    await sql`
      INSERT INTO benchmark_results (run_id, benchmark, params, samples_base, samples_head, p_value, significant, speedup, speedup_lower_bound, passed)
      VALUES (${runId}, ${name}, ${params === null ? null : JSON.stringify(params)}::jsonb, ${[0.2, 0.21, 0.2]}, ${[0.05, 0.05, 0.049]},
        ${passed ? 0.00001 : 0.4}, ${passed}, ${speedup}, ${lb}, ${passed})`.execute(db);
  }
  // The spine, as stage 7 writes it last (this rings publish's doorbell).
  await sql`
    UPDATE pull_requests SET benchmark_decision = 'faster', benchmark_run_id = ${runId}, max_speedup = ${maxSpeedup},
      max_speedup_lower_bound = ${lower}, benchmarked_at = now()
    WHERE id = ${prId}`.execute(db);
  return { id: prId, runId, taskId: `${owner}__${repo}-${p.number}`, pins, buildScript, renderedProblem, patch, environmentDigest: digest };
}

export async function spineOf(db: Db, prId: number): Promise<{ published_at: Date | null; publish_decided_at: Date | null; publish_reason: string | null }> {
  return (await sql<any>`SELECT published_at, publish_decided_at, publish_reason FROM pull_requests WHERE id = ${prId}`.execute(db)).rows[0];
}

/** The bus's record of the stage's attempts on a row, oldest first. */
export async function attemptsOf(db: Db, prId: number): Promise<{ outcome: string; error: string | null }[]> {
  return (await sql<any>`SELECT outcome, error FROM stage_runs WHERE stage = 'publish' AND subject_id = ${prId} ORDER BY id`.execute(db)).rows;
}
