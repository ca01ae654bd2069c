import { sql } from 'kysely';
import type { Db } from '../db/connect.js';

const SLUG = /^([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))\/([A-Za-z0-9._-]{1,100})$/;

/** Splits OWNER/NAME, refusing anything GitHub would not accept as a repository name. */
export function parseRepoSlug(slug: string): { owner: string; name: string } {
  const m = SLUG.exec(slug.trim().replace(/^https:\/\/github\.com\//, '').replace(/\.git$/, ''));
  if (!m || m[2] === '.' || m[2] === '..') throw new Error(`not a repository name: ${JSON.stringify(slug)} (expected OWNER/NAME)`);
  return { owner: m[1], name: m[2] };
}

/**
 * Inserts the repository row; that insert alone is what starts processing.
 * Adding a repository that exists re-enables it and asks for fresh metadata
 * and a fresh scrape: setting both outputs to NULL is a re-request, so a
 * repository a stage had given up on runs again too.
 * Names are case-insensitive, as on GitHub: adding PyData/XArray finds the
 * row pydata/xarray (which keeps its spelling).
 */
export async function addRepo(db: Db, slug: string, opts: { gitPath?: string } = {}): Promise<{ id: number; created: boolean }> {
  const { owner, name } = parseRepoSlug(slug);
  const { rows } = await sql<{ id: number; created: boolean }>`
    INSERT INTO repositories (owner, name, source, git_path, ingest_reason)
    VALUES (${owner}, ${name}, ${opts.gitPath ? 'git' : 'github'}, ${opts.gitPath ?? null}, 'added by hand')
    ON CONFLICT (lower(owner), lower(name)) WHERE spelling_of IS NULL DO UPDATE SET
      source = EXCLUDED.source, git_path = EXCLUDED.git_path,
      ingest_enabled = true, ingest_reason = 'added by hand', metadata_fetched_at = NULL, last_scraped_at = NULL,
      updated_at = now()
    RETURNING id, (xmax = 0) AS created`.execute(db);
  return rows[0];
}
