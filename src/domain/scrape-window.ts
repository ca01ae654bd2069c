/**
 * Which merged window a scrape reads, and where its cursor may move: pure
 * arithmetic on times, so the rules are testable without a clock or a source.
 *
 * The cursor means "every PR merged before this has been read at least once".
 * It may only move to what a source really showed: GitHub search is eventually
 * consistent (a PR merged a minute ago may be missing from results for a
 * while), and a local clone shows only what was fetched into it.
 */

export interface ScrapeWindowSettings {
  /** The window ends this long before now, so search has had time to index what it covers. */
  lagSeconds: number;
  /** Each scrape starts this long before the cursor again (the upsert is idempotent; only API calls are spent). */
  overlapSeconds: number;
}

export interface ScrapeWindowInput {
  /** Where the last scrape stopped; null = never scraped. */
  cursor: Date | null;
  /** The earliest merge time wanted (the repository's scrape_since, or the default). */
  since: Date;
  now: Date;
}

/**
 * The half-open window [from, to) to read, at whole seconds (search
 * qualifiers have second granularity). Empty (from >= to) when nothing is
 * due yet.
 */
export function scrapeWindow(input: ScrapeWindowInput, settings: ScrapeWindowSettings): { from: Date; to: Date } {
  const since = input.since.getTime();
  const from = input.cursor ? Math.max(since, input.cursor.getTime() - settings.overlapSeconds * 1000) : since;
  const to = input.now.getTime() - settings.lagSeconds * 1000;
  return { from: new Date(floorToSecond(from)), to: new Date(floorToSecond(to)) };
}

/**
 * Where a source that yields PRs in no useful order (a git clone) leaves the
 * cursor: at the newest merge time it showed, never past it and never back;
 * unchanged when it showed nothing.
 */
export function cursorAfterSeen(cursor: Date | null, mergedAts: Iterable<string>): Date | null {
  let newest = cursor?.getTime() ?? -Infinity;
  for (const at of mergedAts) {
    const t = Date.parse(at);
    if (t > newest) newest = t;
  }
  return Number.isFinite(newest) ? new Date(newest) : null;
}

function floorToSecond(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}
