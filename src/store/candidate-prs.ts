import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import { jsonb } from '../domain/clean.js';

/** What stage 5 records about one PR's problem statement (see sql/011_render.sql). */
export interface CandidateRecord {
  pullRequestId: number;
  sourceKind: 'github' | 'git';
  linkedIssues: unknown[];
  skippedRefs: unknown[];
  extracted: unknown | null;
  sections: unknown | null;
  fidelity: unknown | null;
  promptHash: string | null;
  model: string | null;
  leakageScore: number | null;
  leakage: unknown | null;
  anonymized: unknown | null;
  outcome: string;
}

/** JSON text for a jsonb parameter, or SQL NULL for nothing. */
const json = (v: unknown): string | null => (v === null || v === undefined ? null : jsonb(v));

/** Inserts or rewrites the PR's candidate_prs row (one per PR; a re-render replaces it). */
export async function saveCandidate(db: Kysely<Database> | Transaction<Database>, r: CandidateRecord): Promise<void> {
  await sql`
    INSERT INTO candidate_prs (pull_request_id, source_kind, linked_issues, skipped_refs, extracted, sections, fidelity,
      prompt_hash, model, leakage_score, leakage, anonymized, outcome)
    VALUES (${r.pullRequestId}, ${r.sourceKind}, ${json(r.linkedIssues)}::jsonb, ${json(r.skippedRefs)}::jsonb,
      ${json(r.extracted)}::jsonb, ${json(r.sections)}::jsonb, ${json(r.fidelity)}::jsonb,
      ${r.promptHash}, ${r.model}, ${r.leakageScore}, ${json(r.leakage)}::jsonb, ${json(r.anonymized)}::jsonb, ${r.outcome})
    ON CONFLICT (pull_request_id) DO UPDATE SET
      source_kind = EXCLUDED.source_kind, linked_issues = EXCLUDED.linked_issues, skipped_refs = EXCLUDED.skipped_refs,
      extracted = EXCLUDED.extracted, sections = EXCLUDED.sections, fidelity = EXCLUDED.fidelity,
      prompt_hash = EXCLUDED.prompt_hash, model = EXCLUDED.model, leakage_score = EXCLUDED.leakage_score,
      leakage = EXCLUDED.leakage, anonymized = EXCLUDED.anonymized, outcome = EXCLUDED.outcome, updated_at = now()`
    .execute(db);
}
