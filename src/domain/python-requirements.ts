/**
 * PEP 508 requirement strings as a project declares them: parsed (never
 * rewritten), dropped with a reason when they cannot be used, and stripped of
 * the tooling the base environment owns.
 */
import { validRange } from '@renovatebot/pep440';
import { parsePipRequirementsLine } from 'pip-requirements-js';

/** Where a requirement was declared, e.g. `pyproject.toml [project].dependencies`. */
export interface DeclaredRequirement {
  requirement: string;
  source: string;
}

export interface DroppedRequirement extends DeclaredRequirement {
  reason: string;
}

/** Installed in every base image (asv runs there), so never pinned per commit. */
export const BASE_TOOLING: readonly string[] = ['asv', 'hypothesis', 'pip', 'pytest', 'setuptools', 'versioneer', 'wheel'];

/** PEP 503 normalized project name: `Foo_Bar.baz` -> `foo-bar-baz`. */
export function canonicalName(name: string): string {
  return name.trim().replace(/[-_.]+/g, '-').toLowerCase();
}

export interface UsableRequirement extends DeclaredRequirement {
  /** Canonical project name. */
  name: string;
}

export interface SortedRequirements {
  usable: UsableRequirement[];
  dropped: DroppedRequirement[];
}

/**
 * Splits declared requirements into those the resolver gets (exactly as
 * written, trimmed, each once) and those dropped with the reason: a line that
 * does not parse as PEP 508, a version that is not PEP 440, a direct URL
 * (it cannot be resolved against the index at a cutoff), the project itself
 * (an extra that names its own project), and base tooling.
 */
export function sortRequirements(declared: readonly DeclaredRequirement[], projectName: string | null): SortedRequirements {
  const usable: UsableRequirement[] = [];
  const dropped: DroppedRequirement[] = [];
  const seen = new Set<string>();
  const self = projectName ? canonicalName(projectName) : null;
  for (const d of declared) {
    const text = d.requirement.trim();
    if (!text) continue;
    const verdict = judgeRequirement(text, self);
    if ('reason' in verdict) {
      dropped.push({ requirement: text, source: d.source, reason: verdict.reason });
      continue;
    }
    if (seen.has(text)) continue;
    seen.add(text);
    usable.push({ requirement: text, source: d.source, name: verdict.name });
  }
  return { usable, dropped };
}

function judgeRequirement(text: string, self: string | null): { name: string } | { reason: string } {
  let parsed;
  try {
    parsed = parsePipRequirementsLine(text);
  } catch (err) {
    return { reason: `not a PEP 508 requirement: ${firstLine((err as Error).message)}` };
  }
  if (!parsed) return { reason: 'empty after removing comments' };
  if (parsed.type !== 'ProjectName' && parsed.type !== 'ProjectURL') return { reason: 'a requirements-file option, not a requirement' };
  const name = canonicalName(parsed.name);
  if (parsed.type === 'ProjectURL') return { reason: `direct URL reference (${parsed.url}): not resolvable against the index at a cutoff` };
  for (const spec of parsed.versionSpec ?? []) {
    const range = `${spec.operator}${spec.version}`;
    if (!validRange(range)) return { reason: `version specifier ${JSON.stringify(range)} is not valid PEP 440` };
  }
  if (self && name === self) return { reason: 'names the project itself (an extra of its own)' };
  if (BASE_TOOLING.includes(name)) return { reason: 'base tooling (the base environment provides it)' };
  return { name };
}

function firstLine(s: string): string {
  return s.split('\n')[0].slice(0, 200);
}

/**
 * Pinned lines as a requirements file for `pip install --no-deps`: with
 * `--require-hashes` when every line carries a hash. pip turns hash checking
 * on as soon as one line has a hash and then refuses the lines without, so a
 * mixed set is installed without hashes (the versions are still exact).
 */
export function installableRequirements(pins: readonly string[]): { lines: string[]; requireHashes: boolean } {
  const lines = pins.map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).sort();
  const hashed = lines.filter((l) => /--hash[= ]/.test(l)).length;
  if (hashed === lines.length) return { lines, requireHashes: lines.length > 0 };
  return { lines: lines.map((l) => l.replace(/\s+--hash[= ]\S+/g, '')), requireHashes: false };
}
