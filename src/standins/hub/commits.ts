/**
 * The hub's commit API as @huggingface/hub calls it:
 *  - preupload (`POST /api/{type}s/{id}/preupload/{branch}`, JSON `{files:[{path,size,sample}]}`)
 *    says which files go through LFS: as the hub does, binary content (a NUL
 *    byte in the 512-byte sample), large files, and paths its default
 *    .gitattributes tracks (*.parquet, *.arrow, archives, weights...);
 *  - commit (`POST /api/{type}s/{id}/commit/{branch}`, application/x-ndjson):
 *    a header line, then `file` (base64 content), `lfsFile` (oid of an
 *    uploaded object) and `deletedFile` lines, applied as one commit, or
 *    not at all.
 */
import type { Answer } from './lfs.js';
import { CommitRefused, type FileChange, type HubStorage, type Repo } from './storage.js';

/** Files at least this large always go through LFS (the hub's threshold is 10 MB). */
export const LFS_SIZE_THRESHOLD = 10 * 1024 * 1024;
const LFS_PATTERNS = /\.(parquet|arrow|bin|pt|pth|ckpt|safetensors|h5|npy|npz|pkl|pickle|onnx|gz|zip|tar|tgz|xz|zst|7z|bz2|msgpack|model|joblib|tflite|wasm)$/i;

export function uploadModeOf(file: { path: string; size: number; sample: string }): 'lfs' | 'regular' {
  if (file.size >= LFS_SIZE_THRESHOLD || LFS_PATTERNS.test(file.path)) return 'lfs';
  const sample = Buffer.from(file.sample ?? '', 'base64');
  return sample.includes(0) ? 'lfs' : 'regular';
}

export function preupload(storage: HubStorage, repo: Repo, branch: string, body: unknown): Answer {
  const files = (body as { files?: unknown })?.files;
  if (!Array.isArray(files)) return { status: 400, body: { error: 'files must be an array' } };
  const head = storage.head(repo, branch);
  if (!head) return { status: 404, body: { error: `Invalid rev id: ${branch}` } };
  return {
    status: 200,
    body: {
      files: files.map((f: { path: string; size: number; sample: string }) => ({
        path: f.path, uploadMode: uploadModeOf(f), shouldIgnore: false, oid: head.files.get(f.path)?.sha256 ?? null,
      })),
      commitOid: head.oid,
    },
  };
}

interface NdjsonLine { key?: string; value?: Record<string, unknown> }

/** Parses the ndjson body into the header and the changes (a malformed line refuses the whole commit). */
export function parseCommit(text: string): { header: { summary: string; description?: string; parentCommit?: string }; changes: FileChange[] } {
  const lines = text.split('\n').filter((l) => l.trim()).map((l, i) => {
    try {
      return JSON.parse(l) as NdjsonLine;
    } catch {
      throw new CommitRefused(400, `line ${i + 1} is not JSON`);
    }
  });
  const headerLine = lines.find((l) => l.key === 'header');
  if (!headerLine?.value || typeof headerLine.value.summary !== 'string' || !headerLine.value.summary.trim()) {
    throw new CommitRefused(400, 'the commit needs a header with a summary');
  }
  const changes: FileChange[] = [];
  for (const l of lines) {
    const v = l.value ?? {};
    const path = String(v.path ?? '');
    switch (l.key) {
      case 'header': break;
      case 'file':
        if (v.encoding !== 'base64' || typeof v.content !== 'string') throw new CommitRefused(400, `file ${path}: content must be base64`);
        changes.push({ kind: 'file', path, bytes: Buffer.from(v.content, 'base64') });
        break;
      case 'lfsFile':
        if (v.algo !== undefined && v.algo !== 'sha256') throw new CommitRefused(400, `lfsFile ${path}: algo must be sha256`);
        changes.push({ kind: 'lfsFile', path, oid: String(v.oid), size: Number(v.size) });
        break;
      case 'deletedFile':
        changes.push({ kind: 'deletedFile', path });
        break;
      default:
        throw new CommitRefused(400, `unknown key ${String(l.key)}`);
    }
  }
  const h = headerLine.value;
  return {
    header: {
      summary: String(h.summary), description: typeof h.description === 'string' ? h.description : undefined,
      parentCommit: typeof h.parentCommit === 'string' ? h.parentCommit : undefined,
    },
    changes,
  };
}

export function commit(storage: HubStorage, repo: Repo, branch: string, body: string, baseUrl: string): Answer {
  try {
    const { header, changes } = parseCommit(body);
    const c = storage.commit(repo, branch, header, changes);
    const prefix = repo.type === 'model' ? '' : `${repo.type}s/`;
    return { status: 200, body: { success: true, commitOid: c.oid, commitUrl: `${baseUrl}/${prefix}${repo.id}/commit/${c.oid}`, hookOutput: '' } };
  } catch (err) {
    if (err instanceof CommitRefused) return { status: err.status, body: { error: err.message } };
    throw err;
  }
}
