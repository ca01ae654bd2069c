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
    /** Stages 1-3 decided what the PR's expectation says. */
    as_expected: boolean;
  }>;
  /** Every PR of the repository was stored and judged as expected by stages 1-3. */
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

/**
 * What the funnel made of each generated PR so far, against what it should.
 * `as_expected` covers stages 1-3 (stored, symbolic verdict, judged); stages
 * 4-6 are reported beside it (environment, problem, verified build); as stages 7-8
 * join the demo, each PR's expected outcome (published, or the stage and
 * reason that stops it: `Expectation.outcome` and `why`) is the thing to check.
 */
export async function summarizeGeneratedRepo(db: Db, repo: GeneratedRepo): Promise<GeneratedRepoSummary> {
  const [repoRow] = (await sql<{ id: number; clone_url: string | null }>`
    SELECT id, clone_url FROM repositories WHERE owner = ${repo.owner} AND name = ${repo.name}`.execute(db)).rows;
  const { rows } = await sql<{ number: number; symbolic: boolean | null; perf: boolean | null; can_install: boolean | null;
    rendered: boolean | null; render_reason: string | null; built: boolean | null; build_strategy: string | null; build_reason: string | null }>`
    SELECT number, is_performance_commit_symbolic AS symbolic, is_performance_commit AS perf, can_install,
           CASE WHEN problem_rendered_at IS NULL THEN NULL ELSE rendered_problem IS NOT NULL END AS rendered, render_reason,
           CASE WHEN env_built_at IS NULL THEN NULL ELSE container_name IS NOT NULL END AS built, build_reason,
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
      as_expected: pull !== undefined && symbolic === expected.symbolic && perf === expected.judgedPerf,
    };
  });
  return {
    repository: repo.fullName, clone_url: repoRow?.clone_url ?? null, wheels_dir: repo.wheelDir, prs,
    as_expected: prs.every((p) => p.as_expected),
  };
}
