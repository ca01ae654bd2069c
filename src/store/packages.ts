/** SQL of stage 4's tables: `packages` (one per repository and merge commit) and the memo `package_resolutions`. */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../db/schema.js';

type Q = Kysely<Database> | Transaction<Database>;

/** A resolution as the memo keeps it. */
export interface Resolution {
  canInstall: boolean;
  installReason: string | null;
  envPayload: string[] | null;
  cutoffUsed: boolean;
  cutoffNote: string | null;
  resolvedWithoutCutoff: boolean;
  seconds: number | null;
  /** Cutoffs for which it holds too (resolved at a cutoff behind the proxy): (after, until]. */
  validAfter: Date | null;
  validUntil: Date | null;
}

export interface MemoRow extends Resolution {
  memoKey: string;
  familyKey: string;
  requirements: string[];
  pythonVersion: string;
  cutoffDay: string | null;
  indexUrl: string;
  resolver: string;
  resolverVersion: string;
}

const COLUMNS = sql`memo_key, can_install, install_reason, env_payload, cutoff_used, cutoff_note, resolved_without_cutoff, seconds, valid_after, valid_until`;

const toResolution = (r: any): Resolution & { memoKey: string } => ({
  memoKey: r.memo_key, canInstall: r.can_install, installReason: r.install_reason, envPayload: r.env_payload, cutoffUsed: r.cutoff_used,
  cutoffNote: r.cutoff_note, resolvedWithoutCutoff: r.resolved_without_cutoff, seconds: r.seconds, validAfter: r.valid_after, validUntil: r.valid_until,
});

/** The memo entry of exactly this key (same cutoff day). */
export async function findResolution(db: Q, memoKey: string): Promise<(Resolution & { memoKey: string }) | null> {
  const { rows } = await sql<any>`SELECT ${COLUMNS} FROM package_resolutions WHERE memo_key = ${memoKey}`.execute(db);
  return rows[0] ? toResolution(rows[0]) : null;
}

/** A resolution of the same family (all but the cutoff) that holds at `cutoff` too. */
export async function findResolutionAt(db: Q, familyKey: string, cutoff: Date): Promise<(Resolution & { memoKey: string }) | null> {
  const { rows } = await sql<any>`
    SELECT ${COLUMNS} FROM package_resolutions
    WHERE family_key = ${familyKey} AND valid_until IS NOT NULL AND ${cutoff}::timestamptz <= valid_until
      AND (valid_after IS NULL OR valid_after < ${cutoff}::timestamptz)
    ORDER BY created_at LIMIT 1`.execute(db);
  return rows[0] ? toResolution(rows[0]) : null;
}

/** Stores a new resolution (a concurrent twin keeps the first). */
export async function saveResolution(db: Q, m: MemoRow): Promise<void> {
  await sql`
    INSERT INTO package_resolutions (memo_key, family_key, valid_after, valid_until, requirements, python_version, cutoff_day, index_url, resolver, resolver_version,
      can_install, install_reason, env_payload, cutoff_used, cutoff_note, resolved_without_cutoff, seconds)
    VALUES (${m.memoKey}, ${m.familyKey}, ${m.validAfter}, ${m.validUntil}, ${JSON.stringify(m.requirements)}::jsonb, ${m.pythonVersion}, ${m.cutoffDay}, ${m.indexUrl}, ${m.resolver},
      ${m.resolverVersion}, ${m.canInstall}, ${m.installReason}, ${m.envPayload === null ? null : JSON.stringify(m.envPayload)}::jsonb,
      ${m.cutoffUsed}, ${m.cutoffNote}, ${m.resolvedWithoutCutoff}, ${m.seconds})
    ON CONFLICT (memo_key) DO NOTHING`.execute(db);
}

export async function countResolutionHit(db: Q, memoKey: string): Promise<void> {
  await sql`UPDATE package_resolutions SET hits = hits + 1, last_hit_at = now() WHERE memo_key = ${memoKey}`.execute(db);
}

/** Everything stage 4 records for one (repository, merge commit). */
export interface PackageRow {
  repositoryId: number;
  mergeCommitSha: string;
  pythonVersion: string | null;
  pythonVersionRung: string | null;
  envPayload: string[] | null;
  canInstall: boolean;
  installReason: string | null;
  resolvedWithoutCutoff: boolean;
  resolver: string | null;
  resolverVersion: string | null;
  indexUrl: string | null;
  cutoffUsed: boolean | null;
  cutoffAt: Date | null;
  cutoffNote: string | null;
  committedAt: Date | null;
  packagingRoot: string | null;
  packagingRootRule: string | null;
  declaredRequirements: unknown[] | null;
  droppedRequirements: unknown[] | null;
  memoKey: string | null;
  memoHit: boolean | null;
}

const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));

/** Inserts or rewrites the row of (repository, merge commit); returns its id. */
export async function upsertPackage(db: Q, p: PackageRow): Promise<number> {
  const { rows } = await sql<{ id: number }>`
    INSERT INTO packages (repository_id, merge_commit_sha, python_version, python_version_rung, env_payload, can_install, install_reason,
      resolved_without_cutoff, resolver, resolver_version, index_url, cutoff_used, cutoff_at, cutoff_note, committed_at,
      packaging_root, packaging_root_rule, declared_requirements, dropped_requirements, memo_key, memo_hit, resolved_at, updated_at)
    VALUES (${p.repositoryId}, ${p.mergeCommitSha}, ${p.pythonVersion}, ${p.pythonVersionRung}, ${json(p.envPayload)}::jsonb, ${p.canInstall},
      ${p.installReason}, ${p.resolvedWithoutCutoff}, ${p.resolver}, ${p.resolverVersion}, ${p.indexUrl}, ${p.cutoffUsed}, ${p.cutoffAt},
      ${p.cutoffNote}, ${p.committedAt}, ${p.packagingRoot}, ${p.packagingRootRule}, ${json(p.declaredRequirements)}::jsonb,
      ${json(p.droppedRequirements)}::jsonb, ${p.memoKey}, ${p.memoHit}, now(), now())
    ON CONFLICT (repository_id, merge_commit_sha) DO UPDATE SET
      python_version = EXCLUDED.python_version, python_version_rung = EXCLUDED.python_version_rung, env_payload = EXCLUDED.env_payload,
      can_install = EXCLUDED.can_install, install_reason = EXCLUDED.install_reason, resolved_without_cutoff = EXCLUDED.resolved_without_cutoff,
      resolver = EXCLUDED.resolver, resolver_version = EXCLUDED.resolver_version, index_url = EXCLUDED.index_url,
      cutoff_used = EXCLUDED.cutoff_used, cutoff_at = EXCLUDED.cutoff_at, cutoff_note = EXCLUDED.cutoff_note,
      committed_at = EXCLUDED.committed_at, packaging_root = EXCLUDED.packaging_root, packaging_root_rule = EXCLUDED.packaging_root_rule,
      declared_requirements = EXCLUDED.declared_requirements, dropped_requirements = EXCLUDED.dropped_requirements,
      memo_key = EXCLUDED.memo_key, memo_hit = EXCLUDED.memo_hit, resolved_at = now(), updated_at = now()
    RETURNING id`.execute(db);
  return rows[0].id;
}

/** The resolver this daemon runs, for the re-resolve UPDATE in the README. */
export async function recordResolverInUse(db: Q, stage: string, resolver: string, version: string, indexUrl: string): Promise<void> {
  await sql`
    INSERT INTO resolvers_in_use (stage, resolver, resolver_version, index_url) VALUES (${stage}, ${resolver}, ${version}, ${indexUrl})
    ON CONFLICT (stage) DO UPDATE SET resolver = EXCLUDED.resolver, resolver_version = EXCLUDED.resolver_version,
      index_url = EXCLUDED.index_url, updated_at = now()`.execute(db);
}
