import { sql } from 'kysely';
import type { Db } from '../db/connect.js';

/** A mistake in the command line (an unknown stage, a malformed name): the CLI exits 2 with the message. */
export class UsageError extends Error {}

/** Stage names a command may name: the built-in ones and any registered in the database. */
export async function knownStageNames(db: Db, builtin: string[]): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`SELECT name FROM stages`.execute(db);
  return [...new Set([...builtin, ...rows.map((r) => r.name)])];
}

/** Throws a UsageError listing the valid names when `stage` is not one of them. */
export async function requireStage(db: Db, builtin: string[], stage: string): Promise<void> {
  const known = await knownStageNames(db, builtin);
  if (!known.includes(stage)) throw new UsageError(`unknown stage: ${stage}; valid stages: ${known.join(', ') || '(none)'}`);
}

/** OWNER/NAME, case as GitHub spells it or not. */
export function parseRepoSlug(slug: string): { owner: string; name: string } {
  const m = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(slug.trim());
  if (!m) throw new UsageError(`not a repository name: ${JSON.stringify(slug)} (expected OWNER/NAME)`);
  return { owner: m[1], name: m[2] };
}

/** OWNER/NAME#NUMBER. */
export function parsePrRef(ref: string): { owner: string; name: string; number: number } {
  const m = /^([^#\s]+)#(\d+)$/.exec(ref.trim());
  if (!m) throw new UsageError(`not a pull request: ${JSON.stringify(ref)} (expected OWNER/NAME#NUMBER)`);
  return { ...parseRepoSlug(m[1]), number: Number(m[2]) };
}

/** The repository's id, matched case-insensitively (GitHub names are), or null. */
export async function findRepository(db: Db, owner: string, name: string): Promise<{ id: number; full_name: string } | null> {
  const { rows } = await sql<{ id: number; full_name: string }>`
    SELECT id, full_name FROM repositories WHERE lower(owner) = lower(${owner}) AND lower(name) = lower(${name})
    ORDER BY spelling_of NULLS FIRST, id LIMIT 1`.execute(db);
  return rows[0] ?? null;
}
