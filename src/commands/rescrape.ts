import { sql } from 'kysely';
import type { Db } from '../db/connect.js';

/**
 * `perfmine rescrape OWNER/NAME`: forgets how far the repository's PRs were
 * stored (scrape_cursor) and re-requests stage 2 (last_scraped_at = NULL, a
 * re-request that also clears a failed lease), so scrape_commits walks its
 * whole merged window again. Stored PRs are kept: the scrape upserts by
 * (repository, number), so nothing judged or built is lost or duplicated.
 */
export async function rescrape(db: Db, repositoryId: number): Promise<void> {
  await sql`UPDATE repositories SET scrape_cursor = NULL, last_scraped_at = NULL, ingest_enabled = true, updated_at = now()
            WHERE id = ${repositoryId}`.execute(db);
}
