/**
 * The LLM stand-in's answers to extraction prompts (`Task: extract`,
 * prompts/extract.md): a deterministic "model" that copies sentences from the
 * documents the prompt shows, so tests can predict every section.
 *
 * The prompt's documents start with a heading line: `=== Pull request: ... ===`,
 * `=== Issue owner/name#N: ... ===` or `--- Comment K on owner/name#N ---`.
 * The answer:
 * - initial_observations: the first two sentences of the first issue (of the
 *   PR's description when there is no issue), then that document's first code block;
 * - triage_attempts: the first sentence of each of the first two comments;
 * - solution_overview: the first two sentences of the PR's description;
 * - solution_observations: its last sentence, when it has more than two.
 *
 * Markers anywhere in the documents make it misbehave on purpose (they are
 * never copied into an answer):
 * - `[standin:invent]`: initial_observations ends with INVENTED_SENTENCE, which
 *   no document contains (the fidelity check must drop it);
 * - `[standin:copy-solution]`: initial_observations also gets the PR's whole
 *   description, code included (the leakage check must catch it);
 * - `[standin:empty]`: every section is empty.
 */

export const INVENTED_SENTENCE =
  'The slowdown was first measured on a Cray supercomputer at the Jet Propulsion Laboratory in 1998.';
export const EXTRACT_MARKERS = ['[standin:invent]', '[standin:copy-solution]', '[standin:empty]'] as const;

interface Doc {
  kind: 'pull request' | 'issue' | 'comment';
  text: string;
}

const HEADING = /^(?:=== (Pull request|Issue)\b.*===|--- Comment .* ---)\s*$/;
const END = /^Reply exactly in this JSON shape/;
const SENTENCES = new Intl.Segmenter('en', { granularity: 'sentence' });
const FENCE = /^ {0,3}(`{3,}|~{3,})/;

/** The documents of an extraction prompt, in order. */
export function extractDocuments(prompt: string): Doc[] {
  const docs: Doc[] = [];
  let current: { kind: Doc['kind']; lines: string[] } | null = null;
  const finish = () => {
    if (current) docs.push({ kind: current.kind, text: current.lines.join('\n').trim() });
    current = null;
  };
  for (const line of prompt.split('\n')) {
    if (END.test(line)) break;
    const m = HEADING.exec(line);
    if (m) {
      finish();
      current = { kind: m[1] === 'Pull request' ? 'pull request' : m[1] === 'Issue' ? 'issue' : 'comment', lines: [] };
    } else if (current) current.lines.push(line);
  }
  finish();
  return docs;
}

function withoutMarkers(text: string): string {
  let out = text;
  for (const m of EXTRACT_MARKERS) out = out.split(m).join('');
  return out.replace(/[ \t]+$/gm, '').trim();
}

/** The prose of a document (fenced code left out), and its fenced code blocks. */
function parts(text: string): { prose: string; code: string[] } {
  const prose: string[] = [];
  const code: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]);
    if (!open) {
      prose.push(lines[i]);
      continue;
    }
    let j = i + 1;
    while (j < lines.length && !new RegExp(`^ {0,3}${open[1][0] === '`' ? '`' : '~'}{${open[1].length},}\\s*$`).test(lines[j])) j++;
    code.push(lines.slice(i, j + 1).join('\n'));
    i = j;
  }
  return { prose: prose.join('\n'), code };
}

function sentencesOf(prose: string): string[] {
  const out: string[] = [];
  for (const paragraph of prose.split(/\n\s*\n/)) {
    const joined = paragraph.split('\n').map((l) => l.replace(/^\s*(?:[-*+]\s+|>\s*)/, '').trim()).filter(Boolean).join(' ');
    for (const { segment } of SENTENCES.segment(joined)) if (segment.trim()) out.push(segment.trim());
  }
  return out;
}

/** The answer's four sections for an extraction prompt. */
export function extractSections(prompt: string): Record<string, string> {
  const docs = extractDocuments(prompt);
  const all = docs.map((d) => d.text).join('\n');
  const empty = { initial_observations: '', triage_attempts: '', solution_overview: '', solution_observations: '' };
  if (all.includes('[standin:empty]')) return empty;

  const clean = docs.map((d) => ({ ...d, text: withoutMarkers(d.text) }));
  const pr = clean.find((d) => d.kind === 'pull request');
  const firstIssue = clean.find((d) => d.kind === 'issue') ?? pr;
  const comments = clean.filter((d) => d.kind === 'comment').slice(0, 2);

  const observed = firstIssue ? parts(firstIssue.text) : { prose: '', code: [] };
  const observations = [sentencesOf(observed.prose).slice(0, 2).join(' '), observed.code[0] ?? ''].filter(Boolean);
  if (all.includes('[standin:invent]')) observations.push(INVENTED_SENTENCE);
  if (all.includes('[standin:copy-solution]') && pr) observations.push(pr.text);

  const prSentences = pr ? sentencesOf(parts(pr.text).prose) : [];
  return {
    initial_observations: observations.join('\n\n'),
    triage_attempts: comments.map((c) => sentencesOf(parts(c.text).prose)[0] ?? '').filter(Boolean).join('\n'),
    solution_overview: prSentences.slice(0, 2).join(' '),
    solution_observations: prSentences.length > 2 ? prSentences[prSentences.length - 1] : '',
  };
}
