/**
 * The demo's generated repository (src/demo/generated-repo) in the demo: it
 * is generated under the demo's data directory, served by the GitHub
 * stand-in like any GitHub repository (PRs with their real diffs, issues with
 * comments), and its row points `clone_url` at the bare repository, so the
 * stages that need its source can clone it offline.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import type { Db } from '../db/connect.js';
import { generateDemoRepo, type ExpectedOutcome, type GeneratedRepo } from '../demo/generated-repo/index.js';
import type { GitHubStandin } from '../standins/github/server.js';

export interface GeneratedRepoSummary {
  repository: string;
  /** As the repository's row has it (null: the row is missing). */
  clone_url: string | null;
  /** The dependencies' wheels (and wheels.json beside them), for the package index stand-in. */
  wheels_dir: string;
  prs: Array<{
    number: number;
    title: string;
    expected: ExpectedOutcome;
    is_performance_commit_symbolic: boolean | null;
    is_performance_commit: boolean | null;
    /** Stage 4: its environment can be installed (null: not decided). */
    can_install: boolean | null;
    /** Stage 5: it has a problem statement; else why not (null: not decided). */
    rendered: boolean | null;
    render_reason: string | null;
    /** Stage 6: it has a verified environment (null: not decided), how it was built, or why not. */
    built: boolean | null;
    build_strategy: string | null;
    build_reason: string | null;
    /** Stage 7: the oracle's PR-level decision and its reason (null: not decided). */
    benchmark_decision: string | null;
    benchmark_reason: string | null;
    max_speedup: number | null;
    max_speedup_lower_bound: number | null;
    /** Stage 8: published (every target written), or why not (null: not decided). */
    published: boolean;
    publish_reason: string | null;
    /** The outcome the funnel reached, in the expectation's terms (null: still on its way, or stopped elsewhere). */
    reached: ExpectedOutcome | null;
    /** Where it stopped and why, in words (null: published or still on its way). */
    stopped: string | null;
    /** Stages 1-3 decided what the PR's expectation says, and the funnel reached its expected outcome. */
    as_expected: boolean;
  }>;
  /** Every PR of the repository was judged as expected and reached its expected outcome. */
  as_expected: boolean;
}

/** Generates the repository in `dir` (removed first: a kept demo's leftovers are not reused) and serves it from `github`. */
export async function prepareGeneratedRepo(github: GitHubStandin, dir: string): Promise<GeneratedRepo> {
  await rm(dir, { recursive: true, force: true });
  const repo = await generateDemoRepo(dir);
  github.addRepo(repo.repo);
  github.addPRs(repo.prs.map((p) => p.pr));
  for (const issue of repo.issues) github.addIssue(repo.fullName, issue);
  return repo;
}

/** Where the demo generates it: beside the demo's database name under the data directory, so --keep keeps both together. */
export function generatedRepoDir(dataDir: string, database: string): string {
  return path.join(dataDir, 'demo', database);
}

/** The one INSERT that starts the repository through the funnel (also printed by the demo). */
export async function insertGeneratedRepo(db: Db, repo: GeneratedRepo): Promise<void> {
  await sql`INSERT INTO repositories (owner, name, clone_url) VALUES (${repo.owner}, ${repo.name}, ${repo.bare})`.execute(db);
}

interface StoredPr {
  number: number; symbolic: boolean | null; perf: boolean | null; can_install: boolean | null;
  rendered: boolean | null; render_reason: string | null; built: boolean | null; build_strategy: string | null; build_reason: string | null;
  benchmark_decision: string | null; benchmark_reason: string | null; max_speedup: number | null; max_speedup_lower_bound: number | null;
  published: boolean; publish_reason: string | null;
}

/** The outcome a stored PR reached, in the expectation's terms (null: not there yet, or stopped at another gate). */
export function reachedOutcome(p: StoredPr): ExpectedOutcome | null {
  if (p.published) return 'published';
  if (p.symbolic === false || p.perf === false) return 'not perf';
  switch (p.benchmark_decision) {
    case 'no change': return 'no change';
    case 'tests failed': return 'tests fail';
    // The PR's environment builds at the base commit (stage 6); its patch does not (stage 7).
    case 'failed': return 'build fails';
    default: return null;
  }
}

/** Where a PR stopped and why (null: published, or still on its way). */
function stoppedAt(p: StoredPr): string | null {
  if (p.published) return null;
  if (p.symbolic === false) return 'stage 2: not a symbolic candidate';
  if (p.perf === false) return 'stage 3: judged not performance work';
  if (p.can_install === false) return 'stage 4: cannot be installed';
  if (p.rendered === false) return `stage 5: ${p.render_reason}`;
  if (p.built === false) return `stage 6: ${p.build_reason}`;
  if (p.benchmark_decision && p.benchmark_decision !== 'faster') return `stage 7: ${p.benchmark_decision} (${p.benchmark_reason})`;
  if (p.publish_reason) return `stage 8: ${p.publish_reason}`;
  return null;
}

/**
 * What the funnel made of each generated PR, against what it should: stages
 * 1-3 (stored, symbolic verdict, judged), then the outcome it reached
 * (published, or the stage and reason that stopped it).
 */
export async function summarizeGeneratedRepo(db: Db, repo: GeneratedRepo): Promise<GeneratedRepoSummary> {
  const [repoRow] = (await sql<{ id: number; clone_url: string | null }>`
    SELECT id, clone_url FROM repositories WHERE owner = ${repo.owner} AND name = ${repo.name}`.execute(db)).rows;
  const { rows } = await sql<StoredPr>`
    SELECT number, is_performance_commit_symbolic AS symbolic, is_performance_commit AS perf, can_install,
           CASE WHEN problem_rendered_at IS NULL THEN NULL ELSE rendered_problem IS NOT NULL END AS rendered, render_reason,
           CASE WHEN env_built_at IS NULL THEN NULL ELSE container_name IS NOT NULL END AS built, build_reason,
           benchmark_decision, benchmark_reason, max_speedup, max_speedup_lower_bound,
           published_at IS NOT NULL AS published, publish_reason,
           (SELECT c.strategy FROM candidate_containers c WHERE c.pull_request_id = p.id AND c.succeeded ORDER BY c.id DESC LIMIT 1) AS build_strategy
    FROM pull_requests p WHERE repository_id = ${repoRow?.id ?? null}`.execute(db);
  const stored = new Map(rows.map((r) => [r.number, r]));
  const prs = repo.prs.map(({ pr, expected }) => {
    const pull = stored.get(pr.number);
    const symbolic = pull?.symbolic ?? null;
    const perf = pull?.perf ?? null;
    return {
      number: pr.number, title: pr.title, expected: expected.outcome,
      is_performance_commit_symbolic: symbolic, is_performance_commit: perf,
      can_install: pull?.can_install ?? null, rendered: pull?.rendered ?? null, render_reason: pull?.render_reason ?? null,
      built: pull?.built ?? null, build_strategy: pull?.build_strategy ?? null, build_reason: pull?.build_reason ?? null,
      benchmark_decision: pull?.benchmark_decision ?? null, benchmark_reason: pull?.benchmark_reason ?? null,
      max_speedup: pull?.max_speedup ?? null, max_speedup_lower_bound: pull?.max_speedup_lower_bound ?? null,
      published: pull?.published ?? false, publish_reason: pull?.publish_reason ?? null,
      reached: pull ? reachedOutcome(pull) : null, stopped: pull ? stoppedAt(pull) : null,
      as_expected: pull !== undefined && symbolic === expected.symbolic && perf === expected.judgedPerf && reachedOutcome(pull) === expected.outcome,
    };
  });
  return {
    repository: repo.fullName, clone_url: repoRow?.clone_url ?? null, wheels_dir: repo.wheelDir, prs,
    as_expected: prs.every((p) => p.as_expected),
  };
}
