import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Db } from '../db/connect.js';
import { readReport } from '../report/queries.js';
import { renderReport } from '../report/render.js';

/** Chart.js's browser bundle, read from the installed package at report time (inlined into the page). */
export function chartJsBundle(): string {
  const entry = createRequire(import.meta.url).resolve('chart.js'); // .../chart.js/dist/chart.cjs
  return readFileSync(path.join(path.dirname(entry), 'chart.umd.js'), 'utf8');
}

/** `--since`: a date (YYYY-MM-DD, UTC) or an ISO timestamp. */
export function parseSince(v: string): Date {
  const d = new Date(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  if (Number.isNaN(d.getTime())) throw new Error(`--since: not a date: ${v} (expected YYYY-MM-DD or an ISO timestamp)`);
  return d;
}

/** Reads the database and writes the report; returns what it wrote. */
export async function writeReport(db: Db, out: string, opts: { since?: Date } = {}): Promise<{ path: string; bytes: number; published: number; scraped: number }> {
  const data = await readReport(db, { since: opts.since });
  const html = renderReport(data, { chartJs: chartJsBundle() });
  const file = path.resolve(out);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, html);
  return {
    path: file, bytes: Buffer.byteLength(html),
    scraped: data.funnel[0]?.passed ?? 0, published: data.funnel.find((g) => g.key === 'published')?.passed ?? 0,
  };
}
