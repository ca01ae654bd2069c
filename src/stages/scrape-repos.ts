import path from 'node:path';
import { sql } from 'kysely';
import type { StageDefinition, SubjectRow } from '../bus/stage.js';
import type { Db } from '../db/connect.js';
import { readGitRepo } from '../adapters/git/git-source.js';
import { benchmarkDir, parseAsvConfig } from '../domain/asv-config.js';
import { cleanText } from '../domain/clean.js';
import { ASV_PROJECT } from './discover-repos.js';
import type { StageDeps } from './deps.js';

interface Verdict {
  enabled: boolean;
  reason: string;
  asvPath: string | null;
  benchDir: string | null;
}

/** Where the suite lives, from the config text; a config that does not parse still counts (asv may accept it). */
function asvVerdict(asvPath: string | null, text: string | null): Verdict {
  if (!asvPath || text === null) return { enabled: false, reason: 'no asv.conf.json found', asvPath: null, benchDir: null };
  try {
    return { enabled: true, reason: 'has an asv suite', asvPath, benchDir: benchmarkDir(asvPath, parseAsvConfig(text)) };
  } catch (err) {
    const dir = path.posix.dirname(asvPath);
    return {
      enabled: true, asvPath, benchDir: path.posix.join(dir === '.' ? '' : dir, 'benchmarks'),
      // The parser's message may quote the file: cleaned, as every text written.
      reason: cleanText(`asv.conf.json did not parse (${(err as Error).message}); assuming benchmarks/`),
    };
  }
}

/**
 * Stage 1b, scrape_repos: for each new repository row (found by search or
 * added by hand), fetch metadata and the asv config, and decide whether to
 * ingest it. Forks, archived and disabled repositories and the asv project are
 * excluded; so are search hits below the star minimum (a repository added by
 * hand is wanted whatever its stars). A repository without an asv config is
 * kept with ingest_enabled = false and the reason.
 *
 * The row keeps GitHub's repository id. A row whose id another row already
 * holds (a former name that GitHub redirects, or a second spelling) is
 * disabled with a reason naming that row, so its PRs are never scraped and
 * judged twice.
 */
export function scrapeRepos(deps: StageDeps): StageDefinition {
  const { config } = deps;
  return {
    name: 'scrape_repos', ordinal: 1, subjectTable: 'repositories',
    description: 'repository metadata, asv config, ingest filters',
    pending: 's.metadata_fetched_at IS NULL', done: 's.metadata_fetched_at IS NOT NULL',
    wakeOn: ['repositories', 'repositories.metadata_fetched_at'],
    writes: ['stars', 'description', 'topics', 'default_branch', 'is_fork', 'is_archived', 'asv_config_path',
      'benchmark_dir', 'github_id', 'ingest_enabled', 'ingest_reason', 'metadata_fetched_at', 'updated_at'],
    outputs: ['metadata_fetched_at'],
    concurrency: 4, leaseSeconds: 120, deadlineSeconds: 600, maxAttempts: 6, backoff: { baseMs: 10_000, maxMs: 1_800_000 },
    rateLimitGroups: ['github'],
    async handle(repo: SubjectRow, ctx) {
      const now = new Date().toISOString();
      if (repo.spelling_of !== null && repo.spelling_of !== undefined) {
        // A legacy second spelling of another row's name (sql/007): that row is the one scraped.
        return { set: { ingest_enabled: false, metadata_fetched_at: now, updated_at: now } };
      }
      if (repo.source === 'git') {
        const info = await readGitRepo(repo.git_path, ctx.signal);
        const v = asvVerdict(info.asvConfigPath, info.asvConfigText);
        return {
          set: {
            default_branch: info.defaultBranch, asv_config_path: v.asvPath, benchmark_dir: v.benchDir,
            ingest_enabled: v.enabled, ingest_reason: `local clone: ${v.reason}`, metadata_fetched_at: now, updated_at: now,
          },
        };
      }
      let calls = 1;
      const meta = await deps.github.repository(repo.owner, repo.name, ctx.signal);
      if (!meta) {
        return { set: { ingest_enabled: false, ingest_reason: 'repository not found on GitHub', metadata_fetched_at: now, updated_at: now }, cost: { api_calls: calls } };
      }
      const metaSet = {
        stars: meta.stars, description: meta.description, topics: meta.topics, default_branch: meta.defaultBranch,
        is_fork: meta.fork, is_archived: meta.archived, metadata_fetched_at: now, updated_at: now,
      };
      const holder = await rowHoldingGitHubId(ctx.db, meta.id, repo.id);
      if (holder) {
        const reason = `same GitHub repository (id ${meta.id}, now ${meta.owner}/${meta.name}) as ${holder.full_name} (row ${holder.id}); not scraped twice`;
        ctx.log.warn({ repo: `${repo.owner}/${repo.name}`, holder: holder.full_name }, 'repository already present under another name');
        return { set: { ...metaSet, ingest_enabled: false, ingest_reason: reason }, cost: { api_calls: calls } };
      }
      const identity = { ...metaSet, github_id: meta.id };
      const exclusion =
        `${meta.owner}/${meta.name}`.toLowerCase() === ASV_PROJECT ? 'the asv project itself'
        : meta.fork ? 'fork'
        : meta.archived ? 'archived'
        : meta.disabled ? 'disabled'
        : repo.origin === 'search' && meta.stars < config.PERFMINE_MIN_STARS ? `${meta.stars} stars, below the minimum of ${config.PERFMINE_MIN_STARS}`
        : null;
      if (exclusion) return { set: { ...identity, ingest_enabled: false, ingest_reason: exclusion }, cost: { api_calls: calls } };

      // The config: where search found it, else the root, else a search inside the repository.
      let asvPath: string | null = repo.asv_config_path ?? 'asv.conf.json';
      let text = await deps.github.fileText(repo.owner, repo.name, asvPath as string, ctx.signal);
      calls++;
      if (text === null) {
        const hits = await deps.github.codeSearch(`filename:asv.conf.json repo:${repo.owner}/${repo.name}`, 1, ctx.signal);
        calls++;
        const hit = hits.hits.sort((a, b) => a.path.split('/').length - b.path.split('/').length)[0];
        asvPath = hit?.path ?? null;
        if (hit) {
          text = await deps.github.fileText(repo.owner, repo.name, hit.path, ctx.signal);
          calls++;
        }
      }
      const v = asvVerdict(asvPath, text);
      ctx.log.info({ repo: `${repo.owner}/${repo.name}`, enabled: v.enabled, reason: v.reason }, 'repository checked');
      return {
        set: { ...identity, asv_config_path: v.asvPath, benchmark_dir: v.benchDir, ingest_enabled: v.enabled, ingest_reason: v.reason },
        cost: { api_calls: calls },
      };
    },
  };
}

/** Another row that already holds this GitHub id, if any. */
async function rowHoldingGitHubId(db: Db, githubId: number, self: number): Promise<{ id: number; full_name: string } | undefined> {
  const { rows } = await sql<{ id: number; full_name: string }>`
    SELECT id, full_name FROM repositories WHERE github_id = ${githubId} AND id <> ${self}`.execute(db);
  return rows[0];
}
