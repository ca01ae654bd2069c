/**
 * Corrupted PR text, as a broken mirror or a buggy client upstream of GitHub
 * can produce it: NUL characters, bytes that are not UTF-8 at all, and lone
 * UTF-16 surrogates. A chosen PR is corrupted the same way every time it is
 * served (in search results, the REST PR, its files and its diff), so a
 * re-read sees the same data, as it would from GitHub.
 */
import { createHash } from 'node:crypto';
import type { Corruption, CorruptionKind, StandinPR } from './types.js';

export const CORRUPTION_KINDS: readonly CorruptionKind[] = ['nul', 'invalid-utf8', 'lone-surrogate'];

/**
 * Stands for raw non-UTF-8 bytes inside a string until the payload is encoded:
 * two noncharacters (never in real text), replaced by INVALID_BYTES on the wire.
 */
const INVALID_UTF8_MARK = '\uFDD0\uFDEF';
/** A lone 0xFF (never valid in UTF-8) and 0xC3 followed by a non-continuation byte. */
const INVALID_BYTES = Buffer.from([0xff, 0xc3, 0x28]);

const INSERTS: Record<CorruptionKind, string> = {
  nul: '\u0000',
  'invalid-utf8': INVALID_UTF8_MARK,
  'lone-surrogate': '\ud800',
};

export class TextCorruptor {
  private config: Required<Omit<Corruption, 'repository'>> & { repository: string | null } | null = null;
  private served = new Set<string>();

  /** Sets which PRs are corrupted from now on; null stops corrupting. */
  set(corruption: Corruption | null): void {
    if (!corruption) {
      this.config = null;
      return;
    }
    const kinds = corruption.kinds ?? [...CORRUPTION_KINDS];
    for (const k of kinds) if (!CORRUPTION_KINDS.includes(k)) throw new Error(`unknown corruption kind ${JSON.stringify(k)}`);
    if (!kinds.length) throw new Error('corruption needs at least one kind');
    const fraction = corruption.fraction ?? 0;
    if (!(fraction >= 0 && fraction <= 1)) throw new Error('corruption fraction must be within 0..1');
    this.config = {
      kinds,
      fraction,
      numbers: corruption.numbers ?? [],
      repository: corruption.repository?.toLowerCase() ?? null,
    };
  }

  /** How the PR's text is broken, or null when it is served as it is. */
  kindFor(pr: StandinPR): CorruptionKind | null {
    const c = this.config;
    if (!c) return null;
    if (c.repository !== null && pr.repository.toLowerCase() !== c.repository) return null;
    const h = prHash(pr);
    const chosen = c.numbers.includes(pr.number) || h / 2 ** 32 < c.fraction;
    return chosen ? c.kinds[h % c.kinds.length] : null;
  }

  /** The PR as served: a copy with a corrupted title and body when it is chosen. */
  apply(pr: StandinPR): StandinPR {
    const kind = this.kindFor(pr);
    if (!kind) return pr;
    this.served.add(`${pr.repository.toLowerCase()}#${pr.number}`);
    return { ...pr, title: corrupt(pr.title, kind), body: corrupt(pr.body || 'No description.', kind) };
  }

  /** Distinct PRs served corrupted so far. */
  get servedCount(): number {
    return this.served.size;
  }
}

/** The text with the corruption put in at its first word break (or at the end). */
function corrupt(text: string, kind: CorruptionKind): string {
  const at = text.indexOf(' ');
  const cut = at < 0 ? text.length : at;
  return text.slice(0, cut) + INSERTS[kind] + text.slice(cut);
}

/** A stable 32-bit hash of the PR's identity, so the choice does not depend on serving order. */
function prHash(pr: StandinPR): number {
  return createHash('sha1').update(`${pr.repository.toLowerCase()}#${pr.number}`).digest().readUInt32BE(0);
}

/**
 * The bytes of a response body: UTF-8, except that invalid-utf8 corruption
 * becomes raw bytes that are not UTF-8 at all (so the body is not valid UTF-8).
 */
export function encodePayload(text: string): Buffer {
  if (!text.includes(INVALID_UTF8_MARK)) return Buffer.from(text, 'utf8');
  const parts = text.split(INVALID_UTF8_MARK).map((p) => Buffer.from(p, 'utf8'));
  const out: Buffer[] = [];
  parts.forEach((p, i) => {
    if (i > 0) out.push(INVALID_BYTES);
    out.push(p);
  });
  return Buffer.concat(out);
}
