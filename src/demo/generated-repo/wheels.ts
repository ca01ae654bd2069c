/**
 * The generated repository's dependencies: tiny pure-Python packages that
 * exist nowhere else, written as real wheels (the demo serves them from an
 * index stand-in). Several versions with upload dates around the PRs' merge
 * dates, so resolving "at the commit date" picks a different version than
 * resolving today.
 */
import { createHash } from 'node:crypto';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { zipArchive, type ZipEntry } from './zip.js';

export interface DemoWheel {
  /** The distribution name as written in requirements, e.g. "demo-helpers". */
  name: string;
  version: string;
  /** The wheel's file name, e.g. demo_helpers-1.1.0-py3-none-any.whl. */
  filename: string;
  /** Absolute path of the written wheel (its mtime is the upload time). */
  path: string;
  /** When the index says it was uploaded (PEP 700 `upload-time`), ISO 8601 UTC. */
  uploadedAt: string;
  /** Requires-Dist lines. */
  requires: string[];
  requiresPython: string;
  sha256: string;
  size: number;
}

interface PackageVersion {
  name: string;
  version: string;
  uploadedAt: string;
  requires: string[];
  requiresPython: string;
  summary: string;
  /** module file path inside the wheel -> source */
  modules: Record<string, string>;
}

const HELPERS_1_0 = `"""Argument helpers shared by the demo packages."""

__version__ = "1.0.0"


def ensure_sequence(values):
    """\`values\` itself when it is a list or tuple, else a list of its items."""
    if isinstance(values, (list, tuple)):
        return values
    return list(values)
`;

const REQUIRE_POSITIVE = `

def require_positive(name, value):
    """\`value\`, or ValueError naming \`name\` when it is not positive."""
    if value <= 0:
        raise ValueError("%s must be positive, got %r" % (name, value))
    return value
`;

const UNITS_0_9 = `"""Units for byte counts."""

__version__ = "0.9.0"

_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"]


def format_bytes(count):
    """\`count\` bytes in the largest binary unit that keeps the number at least 1, e.g. "1.5 KiB"."""
    size = float(count)
    for unit in _UNITS:
        if size < 1024 or unit == _UNITS[-1]:
            return ("%d %s" % (size, unit)) if unit == "B" else ("%.1f %s" % (size, unit))
        size /= 1024
`;

const PARSE_BYTES = `

def parse_bytes(text):
    """The byte count written as "<number> <unit>", e.g. "1.5 KiB" -> 1536."""
    number, unit = text.split()
    return int(float(number) * 1024 ** _UNITS.index(unit))
`;

/** Every version of every dependency, oldest first. */
export const DEMO_PACKAGES: readonly PackageVersion[] = [
  {
    name: 'demo-units', version: '0.9.0', uploadedAt: '2023-08-15T09:12:44Z', requires: [], requiresPython: '>=3.8',
    summary: 'Units for byte counts', modules: { 'demo_units/__init__.py': UNITS_0_9 },
  },
  {
    name: 'demo-helpers', version: '1.0.0', uploadedAt: '2023-11-02T16:40:03Z', requires: [], requiresPython: '>=3.8',
    summary: 'Argument helpers shared by the demo packages', modules: { 'demo_helpers/__init__.py': HELPERS_1_0 },
  },
  {
    name: 'demo-helpers', version: '1.1.0', uploadedAt: '2024-04-10T11:05:27Z', requires: [], requiresPython: '>=3.8',
    summary: 'Argument helpers shared by the demo packages',
    modules: { 'demo_helpers/__init__.py': HELPERS_1_0.replace('"1.0.0"', '"1.1.0"') + REQUIRE_POSITIVE },
  },
  {
    name: 'demo-units', version: '1.0.0', uploadedAt: '2024-12-03T14:21:50Z', requires: [], requiresPython: '>=3.8',
    summary: 'Units for byte counts', modules: { 'demo_units/__init__.py': UNITS_0_9.replace('"0.9.0"', '"1.0.0"') + PARSE_BYTES },
  },
  {
    // Newer than every PR: only a resolution that ignores the commit date picks it.
    name: 'demo-helpers', version: '2.0.0', uploadedAt: '2025-03-01T08:00:00Z', requires: ['demo-units>=1.0'], requiresPython: '>=3.9',
    summary: 'Argument helpers shared by the demo packages',
    modules: { 'demo_helpers/__init__.py': HELPERS_1_0.replace('"1.0.0"', '"2.0.0"') + REQUIRE_POSITIVE },
  },
];

/** The wheel's file contents, dist-info last (RECORD lists the others with their hashes). */
function wheelEntries(p: PackageVersion): ZipEntry[] {
  const distInfo = `${p.name.replace(/-/g, '_')}-${p.version}.dist-info`;
  const metadata = [
    'Metadata-Version: 2.1',
    `Name: ${p.name}`,
    `Version: ${p.version}`,
    `Summary: ${p.summary}`,
    `Requires-Python: ${p.requiresPython}`,
    ...p.requires.map((r) => `Requires-Dist: ${r}`),
    '',
  ].join('\n');
  const wheel = ['Wheel-Version: 1.0', 'Generator: perfmine demo', 'Root-Is-Purelib: true', 'Tag: py3-none-any', ''].join('\n');
  const files: ZipEntry[] = [
    ...Object.entries(p.modules).map(([file, content]) => ({ path: file, content })),
    { path: `${distInfo}/METADATA`, content: metadata },
    { path: `${distInfo}/WHEEL`, content: wheel },
  ];
  const record = files.map((f) => {
    const bytes = Buffer.from(f.content);
    const digest = createHash('sha256').update(bytes).digest('base64url');
    return `${f.path},sha256=${digest},${bytes.length}`;
  });
  record.push(`${distInfo}/RECORD,,`, '');
  return [...files, { path: `${distInfo}/RECORD`, content: record.join('\n') }];
}

/**
 * Writes every version of the demo's dependencies as wheels into `dir` (and
 * nothing else), each file's mtime set to its upload time.
 */
export async function writeDemoWheels(dir: string): Promise<DemoWheel[]> {
  await mkdir(dir, { recursive: true });
  const written: DemoWheel[] = [];
  for (const p of DEMO_PACKAGES) {
    const filename = `${p.name.replace(/-/g, '_')}-${p.version}-py3-none-any.whl`;
    const uploaded = new Date(p.uploadedAt);
    const bytes = zipArchive(wheelEntries(p), uploaded);
    const file = path.join(dir, filename);
    await writeFile(file, bytes);
    await utimes(file, uploaded, uploaded);
    written.push({
      name: p.name, version: p.version, filename, path: file, uploadedAt: p.uploadedAt,
      requires: [...p.requires], requiresPython: p.requiresPython,
      sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length,
    });
  }
  return written;
}
