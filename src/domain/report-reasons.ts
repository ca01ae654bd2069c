/**
 * Reasons are sentences with numbers, ids, paths and quoted output in them, so
 * no two are alike. The report groups them by a normalized prefix: the first
 * line, without the words every reason of a gate starts with, cut before the
 * first detail (a colon, a parenthesis, a quote), numbers and hashes made `#`.
 * "benchmark run 12 did not succeed: timeout (300 s)" and "benchmark run 40 did
 * not succeed: OOM" are both "benchmark run # did not succeed"; paths and test
 * ids (a/b.py, tests/x.py::test_y) become <path>.
 */

const MAX_KEY = 72;

/** The group a reason belongs to; `null` or empty text is "(no reason recorded)". */
export function reasonKey(text: string | null | undefined, opts: { strip?: RegExp } = {}): string {
  let s = (text ?? '').replace(/\r/g, '').split('\n').find((l) => l.trim()) ?? '';
  s = s.trim();
  if (opts.strip) s = s.replace(opts.strip, '').trim();
  // Cut at the first detail: "x: detail", "x (detail)", "x — detail", quoted text.
  const cut = s.search(/:\s|\s\(|\s[—–]\s|["'`]|;\s/);
  if (cut > 0) s = s.slice(0, cut);
  s = s
    .replace(/(?:[\w.-]+\/)+[\w.-]+(?:::[\w[\]-]+)*|[\w.-]+::[\w[\]-]+/g, '<path>')
    .replace(/\bsha256:[0-9a-f]+/gi, '#')
    .replace(/\b[0-9a-f]{7,64}\b/gi, (m) => (/\d/.test(m) ? '#' : m))
    .replace(/[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?:[x×%](?![a-z]))?/gi, '#')
    .replace(/#(?:[\s,.x×%]*#)*(?:[x×%](?![a-z]))?/gi, '#')
    .replace(/\s+/g, ' ')
    .replace(/[\s.,:;]+$/, '')
    .trim();
  if (!s) return '(no reason recorded)';
  if (s.length > MAX_KEY) s = `${s.slice(0, MAX_KEY - 1).trimEnd()}…`;
  return s;
}

/** Judge reasons: the mechanical ones keep their prefix; the LLM's own words are one group. */
export function judgeReasonKey(text: string | null | undefined): string {
  const t = (text ?? '').trim();
  if (/^(size gate|diff unavailable|no patch)\b/i.test(t)) return reasonKey(t);
  if (!t) return '(no reason recorded)';
  return 'the LLM judged it not a performance change';
}

/** The key of rows counted but not told apart (the query kept only the largest groups). */
export const OTHER = 'other';

/**
 * Counts grouped by key, the largest first; more than `limit` groups end with one
 * "other" group, which also takes rows keyed OTHER. The counts always add up.
 */
export function groupReasons(rows: ReadonlyArray<{ key: string; count: number }>, limit = 8): Array<{ reason: string; count: number }> {
  let uncounted = 0;
  const byKey = new Map<string, number>();
  for (const r of rows) {
    if (r.key === OTHER) uncounted += r.count;
    else byKey.set(r.key, (byKey.get(r.key) ?? 0) + r.count);
  }
  const sorted = [...byKey].map(([reason, count]) => ({ reason, count }))
    .sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
  if (sorted.length <= (uncounted ? limit - 1 : limit)) return uncounted ? [...sorted, { reason: OTHER, count: uncounted }] : sorted;
  const kept = sorted.slice(0, limit - 1);
  const tail = sorted.slice(limit - 1);
  const count = tail.reduce((n, r) => n + r.count, 0) + uncounted;
  return [...kept, { reason: uncounted ? OTHER : `${OTHER} (${tail.length} kinds)`, count }];
}
