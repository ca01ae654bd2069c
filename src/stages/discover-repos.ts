import { sql, type Transaction } from 'kysely';
import type { StageDefinition } from '../bus/stage.js';
import type { CodeSearchHit } from '../adapters/github/client.js';
import type { Database } from '../db/schema.js';
import { jsonb } from '../domain/clean.js';
import type { StageDeps } from './deps.js';

/** The asv project itself has an asv.conf.json but is not a benchmark suite of a library. */
export const ASV_PROJECT = 'airspeed-velocity/asv';

/**
 * Stage 1a, discover_repos: one row of `discovery_runs` (from the cron
 * schedule or `perfmine discover`) runs GitHub code search for
 * `filename:asv.conf.json`, up to 10 pages of 100, and inserts a repository
 * row per hit that is not a fork or the asv project itself. The inserts wake
 * scrape_repos, which fetches metadata and applies the remaining filters.
 * They are made in the run's own fenced write-back, so a run whose lease was
 * lost inserts nothing, and they skip a repository already present under any
 * spelling of its name or under a former name (same GitHub id).
 */
export function discoverRepos(deps: StageDeps): StageDefinition {
  return {
    name: 'discover_repos', ordinal: 0, subjectTable: 'discovery_runs',
    description: 'GitHub code search for asv.conf.json -> repositories',
    pending: 's.finished_at IS NULL', done: 's.finished_at IS NOT NULL',
    writes: ['finished_at', 'found', 'inserted'], outputs: ['finished_at'],
    concurrency: 1, leaseSeconds: 300, deadlineSeconds: 1800, maxAttempts: 5, backoff: { baseMs: 30_000, maxMs: 3_600_000 },
    rateLimitGroups: ['github'],
    async handle(run, ctx) {
      const hits = new Map<string, CodeSearchHit>();
      let calls = 0;
      let found = 0;
      for (let page = 1; page <= deps.config.PERFMINE_CODE_SEARCH_PAGES; page++) {
        ctx.signal.throwIfAborted();
        const result = await deps.github.codeSearch(run.query, page, ctx.signal);
        calls++;
        found += result.hits.length;
        for (const h of result.hits) {
          const full = `${h.owner}/${h.name}`.toLowerCase();
          if (h.fork || full === ASV_PROJECT) continue;
          // Prefer the shallowest config path when a repository has several.
          const prev = hits.get(full);
          if (!prev || h.path.split('/').length < prev.path.split('/').length) hits.set(full, h);
        }
        if (result.hits.length < 100 || page * 100 >= result.total) break;
      }
      const repos = [...hits.values()];
      ctx.log.info({ found, repositories: repos.length }, 'code search done');
      return {
        set: { finished_at: new Date().toISOString(), found },
        write: async (trx) => {
          const inserted = await insertFoundRepositories(trx, repos);
          await sql`UPDATE discovery_runs SET inserted = ${inserted} WHERE id = ${run.id}`.execute(trx);
        },
        cost: { api_calls: calls },
      };
    },
  };
}

/** New repository rows for search hits; a hit whose name (any case) or GitHub id is already present is skipped. */
async function insertFoundRepositories(trx: Transaction<Database>, hits: CodeSearchHit[]): Promise<number> {
  if (!hits.length) return 0;
  const rows = hits.map((h) => ({ owner: h.owner, name: h.name, path: h.path, github_id: h.id }));
  const { rows: inserted } = await sql<{ id: number }>`
    INSERT INTO repositories (owner, name, origin, asv_config_path, github_id, ingest_reason)
    SELECT r.owner, r.name, 'search', r.path, r.github_id, 'found by code search'
    FROM jsonb_to_recordset(${jsonb(rows)}::jsonb) AS r(owner text, name text, path text, github_id bigint)
    ON CONFLICT DO NOTHING RETURNING id`.execute(trx);
  return inserted.length;
}
