import { z } from 'zod';

/** The four sections the extractor sorts a PR's discussion into (the reference's names). */
export const SECTION_NAMES = ['initial_observations', 'triage_attempts', 'solution_overview', 'solution_observations'] as const;
export type SectionName = (typeof SECTION_NAMES)[number];
export type Sections = Record<SectionName, string>;

/** The sections a problem statement may be made of: never the solution ones. */
export const PROBLEM_SECTIONS: readonly SectionName[] = ['initial_observations', 'triage_attempts'];

/** A section counts only with at least this many characters and a letter (the reference's rule). */
export const MIN_SECTION_CHARS = 20;

/** Whether a section's text says something: >= 20 characters (trimmed) and at least one letter. */
export function sectionCounts(text: string | null | undefined): boolean {
  const t = (text ?? '').trim();
  return t.length >= MIN_SECTION_CHARS && /\p{L}/u.test(t);
}

/** A section as the model wrote it: a string, a list of strings (joined as lines), or nothing. */
const sectionText = z.union([z.string(), z.array(z.string()).transform((a) => a.join('\n')), z.null()])
  .optional()
  .transform((v) => (v ?? '').trim());

/**
 * The extractor's answer. Every section is optional (an empty string when the
 * text says nothing about it); a key in another case or with spaces is
 * accepted, anything that is not text or a list of text is invalid and asked again.
 */
export const extractAnswer = z.preprocess(
  (raw) => {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return raw;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(raw)) out[k.trim().toLowerCase().replace(/[\s-]+/g, '_')] = v;
    return out;
  },
  z.record(z.string(), z.unknown())
    .refine((o) => SECTION_NAMES.some((k) => k in o), { message: `the answer has none of the sections ${SECTION_NAMES.join(', ')}` })
    .pipe(z.object({
      initial_observations: sectionText,
      triage_attempts: sectionText,
      solution_overview: sectionText,
      solution_observations: sectionText,
    })),
);

/** Sections that do not count (see sectionCounts) become empty strings. */
export function countedSections(sections: Sections): Sections {
  const out = {} as Sections;
  for (const name of SECTION_NAMES) out[name] = sectionCounts(sections[name]) ? sections[name].trim() : '';
  return out;
}

/** One text the extractor reads: the PR's description, an issue's body, or a comment. */
export interface SourceDocument {
  /** e.g. `Pull request: Speed up groupby`, `Issue acme/lib#12: groupby is slow`, `Comment 2 on acme/lib#12`. */
  heading: string;
  kind: 'pull request' | 'issue' | 'comment';
  text: string;
}

/**
 * The documents as the extraction prompt shows them, within a token budget:
 * in order (the PR, then each issue with its comments), each cut to at most a
 * quarter of the budget so one long thread cannot crowd out the rest, and
 * none once the budget is spent. Returns the shown documents too: the
 * fidelity check compares against exactly what the model saw.
 */
export function promptSources(
  docs: SourceDocument[], budgetTokens: number,
  count: (text: string) => number, cut: (text: string, tokens: number) => string,
): { text: string; shown: SourceDocument[]; omitted: number } {
  const perDocument = Math.max(64, Math.floor(budgetTokens / 4));
  let left = budgetTokens;
  const shown: SourceDocument[] = [];
  const parts: string[] = [];
  for (const doc of docs) {
    const body = doc.text.trim();
    if (!body) continue;
    if (left <= 32) break;
    const limit = Math.min(perDocument, left);
    const text = count(body) > limit ? `${cut(body, limit).trimEnd()}\n[...]` : body;
    left -= count(text) + 12;
    shown.push({ ...doc, text });
    parts.push(`${doc.kind === 'comment' ? '---' : '==='} ${doc.heading} ${doc.kind === 'comment' ? '---' : '==='}\n${text}`);
  }
  return { text: parts.join('\n\n'), shown, omitted: docs.filter((d) => d.text.trim()).length - shown.length };
}
