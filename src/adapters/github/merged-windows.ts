import type { MergedPRsPage, PRNode } from './queries.js';

/** GitHub search never returns more than this many results for one query. */
export const SEARCH_CAP = 1000;
/** Aim windows a little under the cap so a slightly denser stretch still fits. */
const TARGET = 900;

export type FetchPage = (from: Date, to: Date, after: string | null) => Promise<MergedPRsPage['search']>;

export interface MergedWindow { from: Date; to: Date; nodes: Array<PRNode | null> }

export class ShortLeafError extends Error {}

const at = (s: number) => new Date(s * 1000);

/**
 * Splits the half-open merged window [from, to) into windows of at most
 * 1000 results and yields each one complete, oldest first. A window over the
 * cap is split at the point its own count predicts (bisection weighted by
 * density, so few probes are wasted), and what is known about the rest of an
 * over-full window sizes the next one. A window that yields fewer distinct
 * PRs than its count is an error, never silent loss: pages that shift between
 * requests can serve one PR twice and skip another, which the plain number of
 * nodes would hide. A PR served twice beside all the others is harmless (the
 * store keeps one).
 */
export async function* mergedWindows(fetchPage: FetchPage, from: Date, to: Date, signal?: AbortSignal): AsyncGenerator<MergedWindow> {
  let lo = Math.floor(from.getTime() / 1000);
  const end = Math.floor(to.getTime() / 1000);
  let known: { hi: number; count: number } | null = null; // results in [lo, known.hi)
  let density = 0; // results per second in the last window
  while (lo < end) {
    signal?.throwIfAborted();
    let hi: number;
    if (known) hi = known.count <= SEARCH_CAP ? known.hi : lo + Math.max(1, Math.floor(((known.hi - lo) * TARGET) / known.count));
    else hi = density > 0 ? Math.min(end, lo + Math.ceil(TARGET / density)) : end;

    let page = await fetchPage(at(lo), at(hi), null);
    while (page.issueCount > SEARCH_CAP) {
      if (hi - lo <= 1) throw new Error(`more than ${SEARCH_CAP} PRs merged in the second ${at(lo).toISOString()}; cannot split further`);
      known = { hi, count: page.issueCount };
      hi = lo + Math.max(1, Math.floor(((hi - lo) * TARGET) / page.issueCount));
      page = await fetchPage(at(lo), at(hi), null);
    }
    const expected = page.issueCount;
    const nodes = [...page.nodes];
    let info = page.pageInfo;
    while (info.hasNextPage && info.endCursor) {
      signal?.throwIfAborted();
      const next = await fetchPage(at(lo), at(hi), info.endCursor);
      nodes.push(...next.nodes);
      info = next.pageInfo;
    }
    const distinct = distinctResults(nodes);
    if (distinct < expected) {
      const twice = nodes.length > distinct ? ` (${nodes.length - distinct} served twice)` : '';
      throw new ShortLeafError(`short leaf: merged ${at(lo).toISOString()}..${at(hi).toISOString()} returned ${distinct} of ${expected} PRs${twice}`);
    }
    yield { from: at(lo), to: at(hi), nodes };
    known = known && known.hi > hi ? { hi: known.hi, count: known.count - expected } : null;
    density = expected / (hi - lo);
    lo = hi;
  }
}

/**
 * How many different results a window's nodes hold: distinct PR numbers, and
 * each node without a number once (it is rejected with a reason, not lost).
 */
export function distinctResults(nodes: Array<PRNode | null>): number {
  const numbers = new Set<number>();
  let unnumbered = 0;
  for (const node of nodes) {
    if (typeof node?.number === 'number') numbers.add(node.number);
    else unnumbered++;
  }
  return numbers.size + unnumbered;
}
