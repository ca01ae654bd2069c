/**
 * The image registry (PERFMINE_PUBLISH_REGISTRY, e.g. `127.0.0.1:5000/perfmine`):
 * the docker executor's verified image, known by its id (what stage 6
 * verified and stage 7 measured), is tagged `<registry>/<repository>:<tag>`
 * and pushed by the Docker engine (dockerode); then the registry's own
 * manifest is read back over the distribution API and must name that image
 * id as its config, so what is published is exactly what was verified.
 *
 * Credentials (PERFMINE_PUBLISH_REGISTRY_USERNAME / _PASSWORD) go only to the
 * engine's X-Registry-Auth header and the registry's auth challenge. A
 * registry on 127.0.0.0/8 or localhost is spoken to over plain HTTP, as
 * Docker does by default; any other over HTTPS.
 */
import type Docker from 'dockerode';
import { withSignal } from '../executors/docker/engine.js';
import { registryFailure, REGISTRY_GROUP } from './failures.js';
import { ServiceDownError } from '../../bus/stage.js';
import { ImageGoneError, type ImageRegistry, type PushedImage } from './target.js';

export interface RegistryOptions {
  docker: Docker;
  /** host[:port][/namespace...] */
  registry: string;
  username?: string;
  password?: string;
  /** The push and the manifest check together. */
  timeoutMs: number;
}

const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
];

interface PushEvent { status?: string; error?: string; errorDetail?: { message?: string }; aux?: { Tag?: string; Digest?: string; Size?: number } }

export class DockerRegistry implements ImageRegistry {
  readonly location: string;
  private readonly host: string;
  private readonly namespace: string;

  constructor(private readonly o: RegistryOptions) {
    this.location = o.registry;
    const [host, ...rest] = o.registry.split('/');
    this.host = host;
    this.namespace = rest.join('/');
  }

  async push(imageId: string, repository: string, tag: string, signal: AbortSignal): Promise<PushedImage> {
    const timeout = AbortSignal.timeout(this.o.timeoutMs);
    const s = AbortSignal.any([signal, timeout]);
    const name = [this.host, this.namespace, repository].filter(Boolean).join('/');
    const { docker } = this.o;
    let info: { Id: string; RepoTags?: string[] };
    try {
      info = await withSignal(docker.getImage(imageId).inspect(), s);
    } catch (err) {
      if (signal.aborted) throw err;
      if ((err as { statusCode?: number }).statusCode === 404) {
        throw new ImageGoneError(imageId, `the verified image ${imageId} is no longer on the Docker engine (discarded since it was verified)`);
      }
      throw new ServiceDownError(REGISTRY_GROUP, `the Docker engine cannot be asked for ${imageId}: ${(err as Error).message.slice(0, 300)}`);
    }
    if (info.Id !== imageId) throw new Error(`the engine's image ${info.Id} is not ${imageId}`);
    await withSignal(docker.getImage(imageId).tag({ repo: name, tag }), s);
    let digest: string;
    try {
      digest = await this.pushTag(`${name}:${tag}`, s);
    } catch (err) {
      if (signal.aborted) throw err;
      if (timeout.aborted) throw new ServiceDownError(REGISTRY_GROUP, `pushing ${name}:${tag} to ${this.location}: no end within ${Math.round(this.o.timeoutMs / 1000)} s`);
      throw err;
    } finally {
      // The registry's tag on the engine is only the push's handle; the image keeps its own tags.
      if ((info.RepoTags ?? []).some((t) => t !== `${name}:${tag}`)) await docker.getImage(`${name}:${tag}`).remove({ noprune: true }).catch(() => undefined);
    }
    const config = await this.manifestConfig(name, digest, s).catch((err: Error) => {
      if (signal.aborted) throw err;
      throw err instanceof ServiceDownError ? err : registryFailure(err.message, `reading back ${name}@${digest}`);
    });
    if (config !== imageId) throw new Error(`the registry's manifest ${name}@${digest} names image ${config}, not the verified ${imageId}`);
    return { name: `${name}:${tag}`, digest };
  }

  /** Pushes a tag through the engine; returns the manifest digest the registry answered. */
  private async pushTag(ref: string, signal: AbortSignal): Promise<string> {
    const options: Docker.ImagePushOptions = { authconfig: this.authconfig(), abortSignal: signal };
    const stream = await this.o.docker.getImage(ref).push(options);
    const events = await new Promise<PushEvent[]>((resolve, reject) => {
      this.o.docker.modem.followProgress(stream, (err: Error | null, out: PushEvent[]) => (err ? reject(err) : resolve(out)));
    }).catch((err: Error) => { throw registryFailure(err.message, `pushing ${ref}`); });
    const failed = events.find((e) => e.error || e.errorDetail);
    if (failed) throw registryFailure(failed.errorDetail?.message ?? failed.error ?? 'the push failed', `pushing ${ref} to ${this.location}`);
    const digest = events.map((e) => e.aux?.Digest).find((d): d is string => typeof d === 'string');
    if (!digest || !/^sha256:[0-9a-f]{64}$/.test(digest)) throw new Error(`pushing ${ref}: the engine reported no digest`);
    return digest;
  }

  /** X-Registry-Auth: the engine wants an object even for a registry without authentication. */
  private authconfig() {
    return { username: this.o.username ?? '', password: this.o.password ?? '', serveraddress: this.host };
  }

  /** The registry's manifest of `name@digest`: its config digest (the image id). Follows a Bearer challenge with the credentials. */
  private async manifestConfig(name: string, digest: string, signal: AbortSignal): Promise<string> {
    const path = name.slice(this.host.length + 1);
    const url = `${this.scheme()}://${this.host}/v2/${path}/manifests/${digest}`;
    const headers: Record<string, string> = { Accept: MANIFEST_TYPES.join(', ') };
    let res = await fetch(url, { headers, signal }).catch((err: Error) => { throw registryFailure(`${err.message} ${(err.cause as Error)?.message ?? ''}`, `reading ${url}`); });
    if (res.status === 401) {
      const auth = await this.authorize(res.headers.get('www-authenticate') ?? '', signal);
      if (auth) res = await fetch(url, { headers: { ...headers, Authorization: auth }, signal });
    }
    if (!res.ok) throw registryFailure(`HTTP ${res.status}`, `reading the manifest ${name}@${digest}`);
    const manifest = await res.json() as { config?: { digest?: string } };
    if (!manifest.config?.digest) throw new Error(`the manifest ${name}@${digest} has no config`);
    return manifest.config.digest;
  }

  private async authorize(challenge: string, signal: AbortSignal): Promise<string | null> {
    const basic = this.o.username ? `Basic ${Buffer.from(`${this.o.username}:${this.o.password ?? ''}`).toString('base64')}` : null;
    if (/^basic/i.test(challenge)) return basic;
    const m = /^bearer\s+(.*)$/i.exec(challenge);
    if (!m) return null;
    const params = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (!params.realm) return null;
    const tokenUrl = new URL(params.realm);
    for (const k of ['service', 'scope']) if (params[k]) tokenUrl.searchParams.set(k, params[k]);
    const res = await fetch(tokenUrl, { headers: basic ? { Authorization: basic } : {}, signal });
    if (!res.ok) throw new ServiceDownError(REGISTRY_GROUP, `the registry's token service refused (HTTP ${res.status})`);
    const body = await res.json() as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    return token ? `Bearer ${token}` : null;
  }

  private scheme(): 'http' | 'https' {
    const host = this.host.replace(/:\d+$/, '');
    return /^127\.\d+\.\d+\.\d+$/.test(host) || host === 'localhost' || host === '[::1]' ? 'http' : 'https';
  }
}

/** A repository name and tag for a PR's image: `<owner>-<repo>:pr-<number>`, as Docker allows (lower case). */
export function imageRepositoryAndTag(owner: string, repo: string, number: number): { repository: string; tag: string } {
  const clean = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'x';
  return { repository: `${clean(owner)}-${clean(repo)}`, tag: `pr-${number}` };
}
