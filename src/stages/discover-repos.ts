import { sql } from 'kysely';
import type { StageDefinition } from '../bus/stage.js';
import type { StageDeps } from './deps.js';

/** The asv project itself has an asv.conf.json but is not a benchmark suite of a library. */
export const ASV_PROJECT = 'airspeed-velocity/asv';

/**
 * Stage 1a, discover_repos: one row of `discovery_runs` (from the cron
 * schedule or `perfmine discover`) runs GitHub code search for
 * `filename:asv.conf.json`, up to 10 pages of 100, and inserts a repository
 * row per hit that is not a fork or the asv project itself. The inserts wake
 * scrape_repos, which fetches metadata and applies the remaining filters.
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
      const hits = new Map<string, { owner: string; name: string; path: string }>();
      let calls = 0;
      let found = 0;
      for (let page = 1; page <= deps.config.PERFMINE_CODE_SEARCH_PAGES; page++) {
        ctx.signal.throwIfAborted();
        const result = await deps.github.codeSearch(run.query, page);
        calls++;
        found += result.hits.length;
        for (const h of result.hits) {
          const full = `${h.owner}/${h.name}`;
          if (h.fork || full.toLowerCase() === ASV_PROJECT) continue;
          // Prefer the shallowest config path when a repository has several.
          const prev = hits.get(full.toLowerCase());
          if (!prev || h.path.split('/').length < prev.path.split('/').length) hits.set(full.toLowerCase(), h);
        }
        if (result.hits.length < 100 || page * 100 >= result.total) break;
      }
      const repos = [...hits.values()];
      let inserted = 0;
      if (repos.length) {
        const { rows } = await sql<{ id: number }>`
          INSERT INTO repositories (owner, name, origin, asv_config_path, ingest_reason)
          SELECT r.owner, r.name, 'search', r.path, 'found by code search'
          FROM jsonb_to_recordset(${JSON.stringify(repos)}::jsonb) AS r(owner text, name text, path text)
          ON CONFLICT (owner, name) DO NOTHING RETURNING id`.execute(ctx.db);
        inserted = rows.length;
      }
      ctx.log.info({ found, repositories: repos.length, inserted }, 'code search done');
      return { set: { finished_at: new Date().toISOString(), found, inserted }, cost: { api_calls: calls } };
    },
  };
}
