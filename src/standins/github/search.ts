/**
 * GitHub search query strings: just enough of the qualifier syntax for the
 * queries perfmine sends (PR search over merged windows, code search for
 * asv.conf.json). Unknown `key:value` qualifiers are ignored, as a stand-in
 * should not reject what GitHub accepts.
 */

/** A query the stand-in cannot make sense of (GitHub would answer 422 or a GraphQL error). */
export class SearchQueryError extends Error {}

/** Inclusive range of epoch seconds. */
export interface TimeRange {
  lo: number;
  hi: number;
}

export interface PRQuery {
  /** Lower-cased "owner/name"; empty = any repository. */
  repos: string[];
  /** Lower-cased owner logins (org:/user:); empty = any. */
  owners: string[];
  merged: TimeRange[];
  created: TimeRange[];
  labels: string[];
  authors: string[];
  /** Lower-cased free-text words that must occur in title or body. */
  words: string[];
  /** True when a qualifier excludes every merged PR (is:open, is:issue, ...). */
  nothing: boolean;
}

export interface CodeQuery {
  filenames: string[];
  paths: string[];
  extensions: string[];
  repos: string[];
  owners: string[];
  words: string[];
}

/** Splits on whitespace, keeping `key:"quoted value"` and `"quoted words"` together, quotes removed. */
export function tokenize(q: string): string[] {
  const tokens = q.match(/[^\s"]*"[^"]*"\S*|\S+/g) ?? [];
  return tokens.map((t) => t.replace(/"/g, ''));
}

function splitQualifier(token: string): [string, string] | null {
  const m = /^(-?[a-z_-]+):(.+)$/i.exec(token);
  return m ? [m[1].toLowerCase(), m[2]] : null;
}

const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;

/** One end of a date qualifier as the span of seconds it denotes (a plain date is the whole UTC day). */
function parseInstant(text: string): TimeRange {
  if (DAY_RE.test(text)) {
    const lo = Date.parse(`${text}T00:00:00Z`) / 1000;
    if (Number.isNaN(lo)) throw new SearchQueryError(`invalid date "${text}"`);
    return { lo, hi: lo + 86_399 };
  }
  // A timestamp without a zone is taken as UTC rather than the server's local time.
  const zoned = /([zZ]|[+-]\d{2}:?\d{2})$/.test(text) ? text : `${text}Z`;
  const ms = Date.parse(zoned);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text) || Number.isNaN(ms)) {
    throw new SearchQueryError(`invalid timestamp "${text}"`);
  }
  const s = Math.floor(ms / 1000);
  return { lo: s, hi: s };
}

/** `LO..HI` (either end may be `*`), `>=X`, `>X`, `<=X`, `<X` or a single `X`; all inclusive. */
export function parseRange(value: string): TimeRange {
  const range = /^(.+?)\.\.(.+)$/.exec(value);
  if (range) {
    const lo = range[1] === '*' ? -Infinity : parseInstant(range[1]).lo;
    const hi = range[2] === '*' ? Infinity : parseInstant(range[2]).hi;
    return { lo, hi };
  }
  const cmp = /^(>=|<=|>|<)(.+)$/.exec(value);
  if (cmp) {
    const at = parseInstant(cmp[2]);
    switch (cmp[1]) {
      case '>=':
        return { lo: at.lo, hi: Infinity };
      case '>':
        return { lo: at.hi + 1, hi: Infinity };
      case '<=':
        return { lo: -Infinity, hi: at.hi };
      default:
        return { lo: -Infinity, hi: at.lo - 1 };
    }
  }
  return parseInstant(value);
}

export function parsePRQuery(q: string): PRQuery {
  const out: PRQuery = {
    repos: [],
    owners: [],
    merged: [],
    created: [],
    labels: [],
    authors: [],
    words: [],
    nothing: false,
  };
  for (const token of tokenize(q)) {
    const qual = splitQualifier(token);
    if (!qual) {
      out.words.push(token.toLowerCase());
      continue;
    }
    const [key, value] = qual;
    const v = value.toLowerCase();
    switch (key) {
      case 'repo':
        out.repos.push(v);
        break;
      case 'org':
      case 'user':
        out.owners.push(v);
        break;
      case 'is':
      case 'type':
        // Every PR the stand-in holds is a merged (hence closed) pull request.
        if (['issue', 'open', 'unmerged', 'draft', 'private', 'locked'].includes(v)) out.nothing = true;
        break;
      case 'state':
        if (v === 'open') out.nothing = true;
        break;
      case 'merged':
      case 'closed': // closedAt = mergedAt for a merged PR
        out.merged.push(parseRange(value));
        break;
      case 'created':
        out.created.push(parseRange(value));
        break;
      case 'label':
        out.labels.push(v);
        break;
      case 'author':
        out.authors.push(v);
        break;
      default:
        break; // sort:, archived:, in:, ... do not change which merged PRs match here
    }
  }
  return out;
}

export function parseCodeQuery(q: string): CodeQuery {
  const out: CodeQuery = { filenames: [], paths: [], extensions: [], repos: [], owners: [], words: [] };
  for (const token of tokenize(q)) {
    const qual = splitQualifier(token);
    if (!qual) {
      out.words.push(token.toLowerCase());
      continue;
    }
    const [key, value] = qual;
    const v = value.toLowerCase();
    if (key === 'filename') out.filenames.push(v);
    else if (key === 'path') out.paths.push(v.replace(/^\/+|\/+$/g, ''));
    else if (key === 'extension') out.extensions.push(v.replace(/^\./, ''));
    else if (key === 'repo') out.repos.push(v);
    else if (key === 'org' || key === 'user') out.owners.push(v);
  }
  return out;
}

/** Whether `path` (with its text) matches a code query; all qualifiers must hold. */
export function codeMatches(query: CodeQuery, path: string, content: string): boolean {
  const lower = path.toLowerCase();
  const base = lower.slice(lower.lastIndexOf('/') + 1);
  const dir = lower.includes('/') ? lower.slice(0, lower.lastIndexOf('/')) : '';
  if (query.filenames.some((f) => f !== base)) return false;
  if (query.extensions.some((e) => !base.endsWith(`.${e}`))) return false;
  if (query.paths.some((p) => !(dir === p || dir.startsWith(`${p}/`) || lower === p))) return false;
  const text = content.toLowerCase();
  return query.words.every((w) => text.includes(w));
}

export function inRange(ranges: TimeRange[], seconds: number): boolean {
  return ranges.every((r) => seconds >= r.lo && seconds <= r.hi);
}

/** Whether a PR merged at `mergedS` is in the search index yet: GitHub indexes a merge some time after it happens. */
export function isIndexed(mergedS: number, nowS: number, visibilityDelayS: number): boolean {
  return mergedS <= nowS - visibilityDelayS;
}

/** The matching PRs in the order search pages serve them, duplicates included (see StandinPR.search_duplicate). */
export function servedResults<T>(matches: T[], duplicate: (e: T) => 'extra' | 'displaces_next' | undefined): T[] {
  const served: T[] = [];
  for (let i = 0; i < matches.length; i++) {
    const e = matches[i];
    const kind = duplicate(e);
    served.push(e);
    if (!kind) continue;
    served.push(e);
    if (kind === 'displaces_next') i++;
  }
  return served;
}
