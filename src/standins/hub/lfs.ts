/**
 * Git LFS as the hub speaks it to @huggingface/hub: the batch endpoint
 * (`POST /{type}s/{id}.git/info/lfs/objects/batch`, application/vnd.git-lfs+json)
 * answers, per object, an upload action (a signed-looking URL on this
 * stand-in) or none when the object is already stored; then the client PUTs
 * the bytes there. The transfer is always `basic`: no Xet (the client uses
 * Xet only when the batch answer says `"transfer":"xet"`), no multipart.
 * An upload whose bytes do not hash to the oid, or have another size, is
 * refused, so what is stored is exactly what was sent.
 */
import { randomBytes } from 'node:crypto';
import { sha256, type HubStorage, type Repo } from './storage.js';

export const LFS_CONTENT_TYPE = 'application/vnd.git-lfs+json';

export interface LfsBatchRequest {
  operation?: string;
  transfers?: string[];
  objects?: { oid?: unknown; size?: unknown }[];
}

export interface Answer { status: number; body: unknown; headers?: Record<string, string> }

const OID = /^[0-9a-f]{64}$/;

export class LfsEndpoints {
  /** Upload hrefs carry this, as the hub's are pre-signed: an href from another stand-in is refused. */
  private readonly signature = randomBytes(12).toString('hex');
  /** uploads announced by a batch and not yet received: `${repoKey} ${oid}` -> size. */
  private readonly expected = new Map<string, number>();

  constructor(private readonly storage: HubStorage, private readonly baseUrl: () => string) {}

  batch(repo: Repo, req: LfsBatchRequest): Answer {
    if (req.operation !== 'upload' && req.operation !== 'download') return { status: 422, body: { message: `unsupported operation ${String(req.operation)}` } };
    if (!Array.isArray(req.objects)) return { status: 422, body: { message: 'objects must be an array' } };
    if (req.transfers && !req.transfers.includes('basic')) return { status: 422, body: { message: 'only the basic transfer is offered' } };
    const objects = req.objects.map((o) => {
      const oid = String(o.oid);
      const size = Number(o.size);
      if (!OID.test(oid) || !Number.isInteger(size) || size < 0) return { oid, size, error: { code: 422, message: 'invalid oid or size' } };
      const href = `${this.baseUrl()}/_standin/lfs/${repo.type}s/${repo.id}/${oid}?sig=${this.signature}`;
      if (req.operation === 'download') {
        return this.storage.hasObject(repo, oid)
          ? { oid, size, authenticated: true, actions: { download: { href, expires_in: 3600 } } }
          : { oid, size, error: { code: 404, message: 'Object does not exist' } };
      }
      if (this.storage.hasObject(repo, oid)) return { oid, size, authenticated: true };
      this.expected.set(`${repo.type}s/${repo.id} ${oid}`, size);
      return { oid, size, authenticated: true, actions: { upload: { href, expires_in: 3600 } } };
    });
    return { status: 200, body: { transfer: 'basic', objects, hash_algo: 'sha256' }, headers: { 'Content-Type': LFS_CONTENT_TYPE } };
  }

  upload(repo: Repo, oid: string, signature: string | null, body: Buffer): Answer {
    if (signature !== this.signature) return { status: 403, body: { message: 'invalid or expired upload signature' } };
    const key = `${repo.type}s/${repo.id} ${oid}`;
    const size = this.expected.get(key);
    if (size === undefined && !this.storage.hasObject(repo, oid)) return { status: 404, body: { message: 'no upload was announced for this object' } };
    if (size !== undefined && body.length !== size) return { status: 400, body: { message: `expected ${size} bytes, received ${body.length}` } };
    const actual = sha256(body);
    if (actual !== oid) return { status: 400, body: { message: `content hashes to ${actual}, not ${oid}` } };
    this.storage.putObject(repo, body);
    this.expected.delete(key);
    return { status: 200, body: {} };
  }

  download(repo: Repo, oid: string, signature: string | null): Answer & { bytes?: Buffer } {
    if (signature !== this.signature) return { status: 403, body: { message: 'invalid or expired signature' } };
    const read = repo.objects.get(oid);
    return read ? { status: 200, body: null, bytes: read } : { status: 404, body: { message: 'Object does not exist' } };
  }
}
