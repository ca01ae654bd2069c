/**
 * The LLM stand-in's "model": pure functions from a chat prompt to the answer
 * text. perfmine's prompt templates carry a `Task: <name>` line, the PR title
 * on a `Title:` line and the size on a `Total lines changed: N` line; the
 * answer is decided by keywords in the title so tests can predict it exactly.
 * Extraction prompts (`Task: extract`) are answered by extract-answers.ts,
 * build-script prompts (`Task: synthesize`) by synthesize-answers.ts.
 */

import { extractSections } from './extract-answers.js';
import { synthesizeAnswer } from './synthesize-answers.js';

export interface ChatMessage {
  role: string;
  content: string;
}

export type LlmTask = 'classify' | 'categorize' | 'extract' | 'synthesize' | 'other';

/** Title words that make `classify` answer YES. */
const PERF_WORDS = [
  'speed',
  'speedup',
  'faster',
  'fast',
  'perf',
  'performance',
  'optimize',
  'optimise',
  'optimization',
  'vectorize',
  'vectorized',
  'cache',
  'caching',
  'lazy',
  'memory',
  'efficient',
  'accelerate',
  'parallel',
  'slow',
];

/** Checked in this order; the first rule with a keyword in the title wins. */
const CATEGORY_RULES: Array<{ words: string[]; category: string }> = [
  { words: ['cache', 'caching', 'memoize'], category: 'cache_and_reuse' },
  { words: ['parallel', 'thread', 'dask'], category: 'use_parallelization' },
  { words: ['vectorize', 'numpy', 'numba', 'cython'], category: 'use_lower_level_system' },
  { words: ['lazy', 'avoid', 'skip', 'unnecessary'], category: 'remove_or_reduce_work' },
  { words: ['algorithm', 'quadratic', 'linear'], category: 'use_better_algorithm' },
  { words: ['index', 'layout', 'dict', 'set'], category: 'use_better_data_structure_and_layout' },
  { words: ['batch', 'chunk'], category: 'do_it_earlier_batch_throttle' },
  { words: ['io', 'read', 'write', 'load'], category: 'io_and_latency_hiding' },
];
const DEFAULT_CATEGORY = 'micro_optimizations';

/** What the `malformed` fault answers: prose where JSON was asked for. */
export const MALFORMED_ANSWER = 'Sure! The answer is probably yes';

/** Suffixes accepted after a keyword (or its stem) as a "simple inflection". */
const SUFFIXES = ['', 's', 'es', 'd', 'ed', 'ing', 'er', 'est', 'ly'];

/** Every inflected form a keyword matches: cache → caches, cached, caching; lazy → lazily; skip → skipped. */
function inflections(keyword: string): Set<string> {
  const forms = new Set<string>();
  const stems = [keyword];
  if (keyword.endsWith('e')) stems.push(keyword.slice(0, -1)); // optimize → optimiz-ing
  if (keyword.endsWith('y')) stems.push(`${keyword.slice(0, -1)}i`); // lazy → lazi-ly
  // Doubled final consonant before a vowel suffix: skip → skipp-ed.
  if (/[^aeiou][aeiou][bdgklmnprt]$/.test(keyword)) stems.push(keyword + keyword.at(-1));
  for (const stem of stems) for (const suffix of SUFFIXES) forms.add(stem + suffix);
  return forms;
}

const FORMS = new Map<string, Set<string>>();
function formsOf(keyword: string): Set<string> {
  let forms = FORMS.get(keyword);
  if (!forms) FORMS.set(keyword, (forms = inflections(keyword)));
  return forms;
}

/** Lower-cased words of `text`; `snake_case`, `dask.array` and `x-y` split too. */
function wordsOf(text: string): string[] {
  return text.toLowerCase().split(/[^a-z0-9]+/).filter((w) => w.length > 0);
}

/** The keywords (in `keywords` order) that occur in `title` as whole words, inflections allowed. */
export function matchedKeywords(title: string, keywords: readonly string[]): string[] {
  const words = wordsOf(title);
  return keywords.filter((k) => {
    const forms = formsOf(k);
    return words.some((w) => forms.has(w));
  });
}

/**
 * The value of every `<label>: value` line across all messages, in order. The
 * label must start the line, so diff lines (prefixed by +, - or a space) never match.
 */
function labelledLines(messages: readonly ChatMessage[], label: RegExp): string[] {
  const found: string[] = [];
  for (const m of messages) {
    for (const line of (m.content ?? '').split(/\r?\n/)) {
      const match = label.exec(line);
      if (match) found.push(match[1].trim());
    }
  }
  return found;
}

export function taskOf(messages: readonly ChatMessage[]): LlmTask {
  // The templates open with the task line, ahead of any free text.
  const task = labelledLines(messages, /^Task:(.*)$/i)[0]?.toLowerCase() ?? '';
  if (/^classify\b/.test(task)) return 'classify';
  if (/^categori[sz]e\b/.test(task)) return 'categorize';
  if (/^extract\b/.test(task)) return 'extract';
  if (/^synthesi[sz]e\b/.test(task)) return 'synthesize';
  return 'other';
}

function titleOf(messages: readonly ChatMessage[]): string {
  // First: the title comes before the PR description, which is free text.
  return labelledLines(messages, /^Title:(.*)$/i)[0] ?? '';
}

function linesChangedOf(messages: readonly ChatMessage[]): number | null {
  // Last: the size line comes after the PR description (which could hold a look-alike).
  const value = labelledLines(messages, /^Total lines changed:\s*([\d,_]+)/i).at(-1);
  if (value === undefined) return null;
  const n = Number(value.replace(/[,_]/g, ''));
  return Number.isFinite(n) ? n : null;
}

export function categoryFor(title: string): { category: string; keyword: string | null } {
  for (const rule of CATEGORY_RULES) {
    const [keyword] = matchedKeywords(title, rule.words);
    if (keyword) return { category: rule.category, keyword };
  }
  return { category: DEFAULT_CATEGORY, keyword: null };
}

export function difficultyFor(linesChanged: number | null): 'easy' | 'medium' | 'hard' {
  if (linesChanged === null) return 'medium';
  if (linesChanged < 50) return 'easy';
  return linesChanged < 300 ? 'medium' : 'hard';
}

/** `{"k": v, ...}` laid out like a model's JSON answer (valid JSON either way). */
function jsonAnswer(fields: Record<string, string>): string {
  const parts = Object.entries(fields).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  return `{${parts.join(', ')}}`;
}

/** The deterministic answer text for a prompt. */
export function answerFor(messages: Array<{ role: string; content: string }>): string {
  const task = taskOf(messages);
  const title = titleOf(messages);
  if (task === 'classify') {
    const hits = matchedKeywords(title, PERF_WORDS);
    return hits.length > 0
      ? jsonAnswer({
          reasoning: `The title mentions the words ${hits.join(', ')}, which point to a performance change.`,
          answer: 'YES',
        })
      : jsonAnswer({
          reasoning: 'The title mentions no performance-related words.',
          answer: 'NO',
        });
  }
  if (task === 'categorize') {
    const { category, keyword } = categoryFor(title);
    const lines = linesChangedOf(messages);
    return jsonAnswer({
      reasoning:
        (keyword ? `The title mentions "${keyword}".` : 'The title names no specific technique.') +
        (lines === null ? ' The size is unknown.' : ` ${lines} lines changed.`),
      category,
      difficulty: difficultyFor(lines),
    });
  }
  if (task === 'extract') return jsonAnswer(extractSections(messages.map((m) => m.content).join('\n')));
  if (task === 'synthesize') return JSON.stringify(synthesizeAnswer(messages.map((m) => m.content).join('\n')));
  return jsonAnswer({ reasoning: 'no task recognised', answer: 'NO' });
}

/** What the `invalid-label` fault answers: valid JSON with labels outside the allowed sets. */
export function invalidLabelAnswerFor(messages: Array<{ role: string; content: string }>): string {
  if (taskOf(messages) === 'extract') {
    // A section that is neither text nor a list of text.
    return '{"initial_observations": "Something is slow somewhere.", "triage_attempts": 42}';
  }
  if (taskOf(messages) === 'categorize') {
    return jsonAnswer({
      reasoning: 'This change makes it go brrr.',
      category: 'make_it_go_brrr',
      difficulty: 'extreme',
    });
  }
  return jsonAnswer({ reasoning: 'Hard to say.', answer: 'PERHAPS' });
}
