/**
 * Text and JSON that PostgreSQL will accept. Postgres text and jsonb refuse
 * the NUL character and malformed UTF-16 (a lone surrogate, which is what a
 * JavaScript string holds after decoding broken UTF-8 or an escaped `\udXXX`).
 * Every value the bus or a store writes passes through here, so one bad PR
 * title cannot fail a whole batch.
 */

/** Text Postgres will accept: no NUL characters, no lone surrogates (replaced by U+FFFD). */
export function cleanText(s: string): string;
export function cleanText(s: string | null | undefined): string | null;
export function cleanText(s: string | null | undefined): string | null {
  if (s === null || s === undefined) return null;
  return (s.includes('\u0000') ? s.replace(/\u0000/g, '') : s).toWellFormed();
}

/** A deep copy with every string (keys included) cleaned; other values as they are. */
export function cleanDeep<T>(value: T): T {
  if (typeof value === 'string') return cleanText(value) as T;
  if (Array.isArray(value)) return value.map(cleanDeep) as T;
  if (value && typeof value === 'object' && !(value instanceof Date) && !Buffer.isBuffer(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[cleanText(k)] = cleanDeep(v);
    return out as T;
  }
  return value;
}

/** JSON text for a `$1::jsonb` parameter: cleaned first, so it never holds `\u0000` or a lone surrogate escape. */
export function jsonb(value: unknown): string {
  return JSON.stringify(cleanDeep(value ?? null));
}
