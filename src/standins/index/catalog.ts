/**
 * The files the index stand-in serves: wheels (and sdists) on disk, each with
 * its sha256, size, project, version, requires-python and upload time. Upload
 * times come from a manifest beside the files (`index-manifest.json`), else
 * the file's mtime, and can be changed through the API.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { canonicalName } from '../../domain/python-requirements.js';

export const MANIFEST_FILE = 'index-manifest.json';

/** What the manifest says of one file (all optional). */
export interface ManifestEntry {
  upload_time?: string;
  requires_python?: string;
  /** true, or the reason, marks the file yanked (PEP 592). */
  yanked?: boolean | string;
}

export interface Manifest {
  files: Record<string, ManifestEntry>;
}

export interface IndexFile {
  filename: string;
  /** Canonical project name (PEP 503). */
  project: string;
  version: string;
  sha256: string;
  size: number;
  uploadTime: Date;
  requiresPython: string | null;
  yanked: boolean | string;
  /** Where the bytes are. */
  path: string;
}

/** Project and version from a wheel or sdist file name, or null for anything else. */
export function parseDistFilename(filename: string): { project: string; version: string } | null {
  const wheel = /^([^-]+)-([^-]+)-(?:\d[^-]*-)?[^-]+-[^-]+-[^-]+\.whl$/.exec(filename);
  if (wheel) return { project: canonicalName(wheel[1]), version: wheel[2] };
  const sdist = /^(.+)-([^-]+)\.(?:tar\.gz|zip)$/.exec(filename);
  if (sdist) return { project: canonicalName(sdist[1]), version: sdist[2] };
  return null;
}

export function readManifest(dir: string): Manifest {
  const file = path.join(dir, MANIFEST_FILE);
  if (!existsSync(file)) return { files: {} };
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<Manifest>;
  return { files: parsed.files ?? {} };
}

export class Catalog {
  private readonly files = new Map<string, IndexFile>();

  /** Every wheel and sdist in `dir` (not recursive), with the manifest beside them. Returns how many. */
  loadDir(dir: string): number {
    const manifest = readManifest(dir);
    let n = 0;
    for (const name of readdirSync(dir).sort()) {
      if (!parseDistFilename(name)) continue;
      this.addFile(path.join(dir, name), manifest.files[name] ?? {});
      n++;
    }
    return n;
  }

  addFile(file: string, entry: ManifestEntry = {}): IndexFile {
    const filename = path.basename(file);
    const dist = parseDistFilename(filename);
    if (!dist) throw new Error(`${filename}: not a wheel or sdist file name`);
    const bytes = readFileSync(file);
    const uploadTime = entry.upload_time ? new Date(entry.upload_time) : statSync(file).mtime;
    if (Number.isNaN(uploadTime.getTime())) throw new Error(`${filename}: bad upload_time ${JSON.stringify(entry.upload_time)}`);
    const record: IndexFile = {
      filename, ...dist, sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length,
      uploadTime, requiresPython: entry.requires_python ?? null, yanked: entry.yanked ?? false, path: file,
    };
    this.files.set(filename, record);
    return record;
  }

  setUploadTime(filename: string, at: Date): void {
    const f = this.files.get(filename);
    if (!f) throw new Error(`no file ${filename}`);
    f.uploadTime = at;
  }

  file(filename: string): IndexFile | undefined {
    return this.files.get(filename);
  }

  /** Files of a project (canonical name), oldest version first as uploaded. */
  projectFiles(project: string): IndexFile[] {
    return [...this.files.values()].filter((f) => f.project === project).sort((a, b) => a.filename.localeCompare(b.filename));
  }

  projects(): string[] {
    return [...new Set([...this.files.values()].map((f) => f.project))].sort();
  }
}
