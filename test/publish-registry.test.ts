/**
 * Stage 8 with the docker executor: the verified image (exactly the PR's
 * environment_digest) is pushed to a real registry, Debian's docker-registry
 * on 127.0.0.1, and the published row names it by the registry's digest.
 * Needs a Docker engine and the docker-registry binary: without either the
 * tests are skipped, saying which is missing (PERFMINE_REQUIRE_DOCKER=1, as
 * in CI, makes that an error). The image is a small one imported for the
 * test (a stage-6 image would push the whole base layer, hundreds of MB):
 * the push path is the same, by image id.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { gunzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { sql } from 'kysely';
import type Docker from 'dockerode';
import { parquetReadObjects } from 'hyparquet';
import { Daemon } from '../src/bus/daemon.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { connectEngine, engineStatus } from '../src/adapters/executors/docker/engine.js';
import { tarArchive } from '../src/adapters/executors/docker/tar.js';
import { buildStageDeps } from '../src/stages/index.js';
import { publish } from '../src/stages/publish.js';
import { createTestDb, type TestDb } from './helpers/db.js';
import { attemptsOf, insertPublishablePr, spineOf } from './helpers/publish-fixtures.js';
import { registryUnavailable, startRegistry, type TestRegistry } from './helpers/registry.js';

let skipReason: string | null = null;
let docker: Docker;
let registry: TestRegistry | undefined;
let t: TestDb;
let daemon: Daemon | undefined;
let image: { id: string; ref: string; marker: string };
const root = mkdtempSync(path.join(os.tmpdir(), 'perfmine-publish-registry-'));
const prefix = `perfmine-test-${randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  docker = connectEngine();
  const engine = await engineStatus(docker);
  skipReason = !engine.ok ? engine.reason : registryUnavailable();
  if (skipReason && process.env.PERFMINE_REQUIRE_DOCKER === '1') throw new Error(`PERFMINE_REQUIRE_DOCKER=1 but ${skipReason}`);
  if (skipReason) {
    console.warn(`[perfmine tests] registry tests skipped: ${skipReason}`);
    return;
  }
  t = await createTestDb();
  registry = await startRegistry();
  image = await importTinyImage(`${prefix}-pr`, 'verified');
}, 120_000);

afterEach(async () => {
  await daemon?.stop(5000);
  daemon = undefined;
});

afterAll(async () => {
  await registry?.destroy();
  if (!skipReason) {
    for (const i of await docker.listImages()) {
      if ((i.RepoTags ?? []).some((tag) => tag.startsWith(prefix) || tag.includes(`/${prefix}`))) await docker.getImage(i.Id).remove({ force: true }).catch(() => undefined);
    }
  }
  await t?.destroy();
  rmSync(root, { recursive: true, force: true });
});

/** A one-file image made with `docker import`; its content is unique to this run, so its id is too. */
async function importTinyImage(repo: string, tag: string): Promise<{ id: string; ref: string; marker: string }> {
  const marker = `perfmine verified environment ${randomBytes(8).toString('hex')}`;
  const tar = tarArchive([{ path: 'perfmine/' }, { path: 'perfmine/marker.txt', content: `${marker}\n` }], { uid: 0, gid: 0 });
  const progress = await docker.importImage(Readable.from([tar]) as unknown as string, { repo, tag } as object);
  await new Promise<void>((resolve, reject) => docker.modem.followProgress(progress, (err: Error | null) => (err ? reject(err) : resolve())));
  const info = await docker.getImage(`${repo}:${tag}`).inspect();
  return { id: info.Id, ref: `${repo}:${tag}@${info.Id}`, marker };
}

function stage(env: Record<string, string> = {}) {
  const config = loadConfig({
    PERFMINE_SCHEDULE: 'false', PERFMINE_DATA_DIR: path.join(root, 'data'), PERFMINE_PUBLISH_DIR: path.join(root, 'published'),
    PERFMINE_PUBLISH_DATASET: 'images', PERFMINE_PUBLISH_REGISTRY: `${registry!.host}/perfmine`, PERFMINE_PUBLISH_TIMEOUT_S: '120', ...env,
  });
  return { ...publish(buildStageDeps(config, silentLogger)), backoff: { baseMs: 100, maxMs: 400 } };
}

async function startDaemon(env: Record<string, string> = {}): Promise<Daemon> {
  daemon = new Daemon({ db: t.db, connectionString: t.url, stages: [stage(env)], pollIntervalMs: 200, breaker: { baseSeconds: 1, maxSeconds: 2 } });
  await daemon.start();
  return daemon;
}

async function registryJson(pathname: string): Promise<any> {
  const res = await fetch(`http://${registry!.host}${pathname}`, {
    headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' },
  });
  expect(res.status, pathname).toBe(200);
  return res.json();
}

describe('publishing a docker environment', () => {
  it('pushes exactly the verified image and publishes it by the registry\'s digest', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const pr = await insertPublishablePr(t.db, {
      number: 801, mergedAt: '2024-09-03T00:00:00Z', executor: 'docker', environmentDigest: image.id, containerName: image.ref,
    });
    const d = await startDaemon();
    await d.whenIdle();

    const spine = await spineOf(t.db, pr.id);
    expect(spine.published_at, spine.publish_reason ?? '').not.toBeNull();
    const name = `${registry!.host}/perfmine/acme-fastlib:pr-801`;
    expect(spine.publish_reason).toContain(`image ${name}@sha256:`);
    const file = readFileSync(path.join(root, 'published', 'data', 'images@2024-09.parquet'));
    const [row] = await parquetReadObjects({ file: file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer });
    expect(row).toMatchObject({ executor: 'docker', environment_digest: image.id, image_name: name });
    expect(row.image_digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect((row.environment_lock as { image: string }).image).toBe(`${name}@${row.image_digest}`);

    // The registry's manifest under that digest is the verified image: its config is the image id, its layer our file.
    const manifest = await registryJson(`/v2/perfmine/acme-fastlib/manifests/${row.image_digest}`);
    expect(manifest.config.digest).toBe(image.id);
    const tags = await registryJson('/v2/perfmine/acme-fastlib/tags/list');
    expect(tags.tags).toEqual(['pr-801']);
    const layer = await fetch(`http://${registry!.host}/v2/perfmine/acme-fastlib/blobs/${manifest.layers[0].digest}`);
    expect(gunzipSync(Buffer.from(await layer.arrayBuffer())).toString('latin1')).toContain(image.marker);
    // The engine keeps the image under its own name; the push's tag is gone.
    const info = await docker.getImage(image.id).inspect();
    expect(info.RepoTags).toEqual([`${prefix}-pr:verified`]);
  });

  it('a registry that is down leaves the PR unpublished and waiting; back up, it is published', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const pr = await insertPublishablePr(t.db, {
      number: 802, mergedAt: '2024-10-03T00:00:00Z', executor: 'docker', environmentDigest: image.id, containerName: image.ref,
    });
    await registry!.stop();
    const d = await startDaemon();
    const end = Date.now() + 60_000;
    while ((await attemptsOf(t.db, pr.id)).length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
    const attempts = await attemptsOf(t.db, pr.id);
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(attempts.every((a) => a.outcome === 'service_down')).toBe(true);
    expect(attempts[0].error).toMatch(/connection refused/);
    expect((await spineOf(t.db, pr.id)).published_at).toBeNull();
    expect((await sql`SELECT 1 FROM published_tasks WHERE pull_request_id = ${pr.id}`.execute(t.db)).rows).toHaveLength(0);

    await registry!.start();
    await d.whenIdle();
    expect((await spineOf(t.db, pr.id)).published_at).not.toBeNull();
    const manifest = await registryJson('/v2/perfmine/acme-fastlib/manifests/pr-802');
    expect(manifest.config.digest).toBe(image.id);
  }, 120_000);

  it('a verified image no longer on the engine is decided, with the reason, not retried', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const gone = `sha256:${randomBytes(32).toString('hex')}`;
    const pr = await insertPublishablePr(t.db, { number: 803, mergedAt: '2024-11-03T00:00:00Z', executor: 'docker', environmentDigest: gone });
    const d = await startDaemon();
    await d.whenIdle();
    const spine = await spineOf(t.db, pr.id);
    expect(spine.published_at).toBeNull();
    expect(spine.publish_decided_at).not.toBeNull();
    expect(spine.publish_reason).toMatch(new RegExp(`not published: the verified image ${gone} is no longer on the Docker engine`));
  });
});
