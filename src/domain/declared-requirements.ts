/**
 * What a commit declares it needs, read from its packaging files without
 * running any of them: pyproject.toml (smol-toml), the result of reading
 * setup.py / setup.cfg (see adapters/python/read_setup.py), and the asv
 * config's matrix.
 */
import { parse as parseToml } from 'smol-toml';
import type { DeclaredRequirement, DroppedRequirement } from './python-requirements.js';

/** What one packaging file says; `error` means the file could not be read at all. */
export interface PackagingReading {
  name: string | null;
  requiresPython: string | null;
  classifiers: string[];
  requirements: DeclaredRequirement[];
  /** Values present but not readable without running code (setup.py), or of the wrong type. */
  unreadable: DroppedRequirement[];
  error?: string;
}

export const emptyReading = (): PackagingReading => ({ name: null, requiresPython: null, classifiers: [], requirements: [], unreadable: [] });

/** A text that is really a binary file (a NUL byte is never in a text packaging file). */
export function binaryFileReason(file: string, text: string): string | null {
  return text.includes('\0') ? `${file} is a binary file, not text` : null;
}

/**
 * pyproject.toml: `[project]` dependencies, optional-dependencies,
 * requires-python, classifiers and name, and `[build-system].requires`.
 * Malformed TOML is an error with the parser's message.
 */
export function readPyproject(text: string, file = 'pyproject.toml'): PackagingReading {
  const out = emptyReading();
  const binary = binaryFileReason(file, text);
  if (binary) return { ...out, error: binary };
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    return { ...out, error: `${file} is not valid TOML: ${(err as Error).message.split('\n')[0]}` };
  }
  const project = asTable(doc.project);
  const build = asTable(doc['build-system']);
  if (project) {
    if (typeof project.name === 'string') out.name = project.name;
    if (typeof project['requires-python'] === 'string') out.requiresPython = project['requires-python'];
    out.classifiers = stringList(project.classifiers) ?? [];
    addList(out, project.dependencies, `${file} [project].dependencies`);
    const optional = asTable(project['optional-dependencies']);
    for (const [extra, list] of Object.entries(optional ?? {})) addList(out, list, `${file} [project.optional-dependencies].${extra}`);
    if (project['optional-dependencies'] !== undefined && !optional) {
      out.unreadable.push({ requirement: '', source: `${file} [project].optional-dependencies`, reason: 'not a table' });
    }
  }
  if (build) addList(out, build.requires, `${file} [build-system].requires`);
  return out;
}

function addList(out: PackagingReading, value: unknown, source: string): void {
  if (value === undefined) return;
  const list = stringList(value);
  if (!list) {
    out.unreadable.push({ requirement: '', source, reason: 'not a list of strings' });
    return;
  }
  for (const requirement of list) out.requirements.push({ requirement, source });
}

function asTable(v: unknown): Record<string, unknown> | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) ? v as Record<string, unknown> : null;
}

function stringList(v: unknown): string[] | null {
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v as string[] : null;
}

/**
 * The asv matrix as the reference reads it: its `req` table if present, else
 * its top-level keys other than req/env/env_nobuild. For virtualenv-like
 * environments (virtualenv, venv, existing, or unset) every key is a PyPI
 * package (a `pip+` prefix removed); for conda-like ones only `pip+NAME` keys.
 * One version listed means `==`, several or none the bare name, all null
 * ("None") leaves the package out.
 */
export function asvMatrixRequirements(config: Record<string, unknown>, file = 'asv.conf.json'): DeclaredRequirement[] {
  const matrix = asTable(config.matrix);
  if (!matrix) return [];
  const entries = asTable(matrix.req)
    ?? Object.fromEntries(Object.entries(matrix).filter(([k]) => !['req', 'env', 'env_nobuild'].includes(k)));
  const envType = typeof config.environment_type === 'string' ? config.environment_type : '';
  const pypiEnv = ['', 'virtualenv', 'venv', 'existing'].includes(envType);
  const out: DeclaredRequirement[] = [];
  for (const [key, value] of Object.entries(entries)) {
    const isPip = key.startsWith('pip+');
    if (!pypiEnv && !isPip) continue;
    const name = isPip ? key.slice(4) : key;
    if (!name) continue;
    const versions = value === null || value === undefined ? [null] : Array.isArray(value) ? value : [value];
    if (versions.length > 0 && versions.every((v) => v === null || v === 'None')) continue;
    const real = versions.filter((v): v is string | number => (typeof v === 'string' && v !== '' && v !== 'None') || typeof v === 'number');
    const requirement = real.length === 1 && versions.length === 1 ? `${name}==${String(real[0])}` : name;
    out.push({ requirement, source: `${file} matrix.${key}` });
  }
  return out;
}

/** The asv config's `pythons` list (versions as strings). */
export function asvPythons(config: Record<string, unknown>): string[] {
  const v = config.pythons;
  return Array.isArray(v) ? v.map(String) : [];
}

/** Several readings of one commit (pyproject, setup.cfg, setup.py) merged: the first name / requires-python found wins. */
export function mergeReadings(readings: readonly PackagingReading[]): PackagingReading {
  const out = emptyReading();
  for (const r of readings) {
    out.name ??= r.name;
    out.requiresPython ??= r.requiresPython;
    out.classifiers.push(...r.classifiers.filter((c) => !out.classifiers.includes(c)));
    out.requirements.push(...r.requirements);
    out.unreadable.push(...r.unreadable);
  }
  return out;
}
