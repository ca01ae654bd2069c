/**
 * A repository and its PRs as stages 1-5 leave them for stage 6: judged a
 * performance PR twice, one installable package per merge commit (the pins),
 * the environment resolved and the problem rendered.
 */
import { sql } from 'kysely';
import type { Db } from '../../src/db/connect.js';
import type { GeneratedRepo } from '../../src/demo/generated-repo/index.js';

export interface ResolvedRepo { owner: string; name: string; cloneUrl: string }
export interface ResolvedPr { number: number; title: string; mergedAt: string; mergeSha: string; baseSha: string; patch: string | null }

export async function insertResolvedPrs(
  db: Db, repo: ResolvedRepo, prs: ResolvedPr[], o: { pins: string[]; python?: string; problem?: string },
): Promise<{ repoId: number; prIds: Map<number, number> }> {
  const repoId = (await sql<{ id: number }>`
    INSERT INTO repositories (owner, name, clone_url, asv_config_path, metadata_fetched_at, last_scraped_at)
    VALUES (${repo.owner}, ${repo.name}, ${repo.cloneUrl}, 'asv.conf.json', now(), now()) RETURNING id`.execute(db)).rows[0].id;
  const prIds = new Map<number, number>();
  for (const pr of prs) {
    const pkg = (await sql<{ id: number }>`
      INSERT INTO packages (repository_id, merge_commit_sha, python_version, env_payload, can_install)
      VALUES (${repoId}, ${pr.mergeSha}, ${o.python ?? '3.11'}, ${JSON.stringify(o.pins)}::jsonb, true) RETURNING id`.execute(db)).rows[0].id;
    prIds.set(pr.number, (await sql<{ id: number }>`
      INSERT INTO pull_requests (repository_id, number, title, merged_at, merge_commit_sha, base_sha, patch,
        is_performance_commit_symbolic, is_performance_commit, package_id, can_install, env_resolved_at,
        rendered_problem, problem_rendered_at)
      VALUES (${repoId}, ${pr.number}, ${pr.title}, ${pr.mergedAt}, ${pr.mergeSha}, ${pr.baseSha}, ${pr.patch},
        true, true, ${pkg}, true, now(), ${o.problem ?? 'Make it faster.'}, now()) RETURNING id`.execute(db)).rows[0].id);
  }
  return { repoId, prIds };
}

/** The demo's generated repository and some of its PRs, as insertResolvedPrs takes them. */
export function generatedResolvedPrs(repo: GeneratedRepo, numbers: number[]): [ResolvedRepo, ResolvedPr[]] {
  return [{ owner: repo.owner, name: repo.name, cloneUrl: repo.bare }, numbers.map((number) => {
    const { pr } = repo.prs.find((p) => p.pr.number === number)!;
    return { number, title: pr.title, mergedAt: pr.merged_at, mergeSha: pr.merge_commit_sha!, baseSha: pr.base_sha!, patch: pr.patch ?? null }; // merged PRs: both commits known
  })];
}
