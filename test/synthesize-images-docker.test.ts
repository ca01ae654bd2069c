/**
 * Stage 6's tests (test/synthesize-images.test.ts) once more with the docker
 * executor, so `npm test` checks both executors where a Docker engine answers
 * (CI starts one). Without an engine or its base image they are skipped,
 * saying why; PERFMINE_REQUIRE_DOCKER=1 (CI) makes that a failure.
 */
import { afterAll, expect, it } from 'vitest';
import Docker from 'dockerode';
import { createExecutor } from '../src/adapters/executors/index.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { GitRepoStore } from '../src/adapters/git/repo-store.js';

process.env.PERFMINE_EXECUTOR = 'docker';
// Their PR and repository images carry a prefix of their own, removed afterwards (the base image stays).
const PREFIX = `perfmine-t${process.pid}`;
process.env.PERFMINE_DOCKER_IMAGE_PREFIX = PREFIX;

afterAll(async () => {
  const docker = new Docker();
  const images = await docker.listImages().catch(() => []);
  for (const image of images) {
    for (const tag of image.RepoTags ?? []) {
      if (tag.startsWith(`${PREFIX}-`)) await docker.getImage(tag).remove({ force: true }).catch(() => undefined);
    }
  }
});

if (process.env.PERFMINE_REQUIRE_DOCKER === '1') {
  it('a Docker engine with the base image answers (PERFMINE_REQUIRE_DOCKER=1)', async () => {
    const config = loadConfig({ PERFMINE_EXECUTOR: 'docker' });
    const executor = createExecutor('docker', { config, repos: new GitRepoStore({ dataDir: config.PERFMINE_DATA_DIR }), log: silentLogger });
    expect(await executor.available()).toEqual({ ok: true });
  });
}

await import('./synthesize-images.test.js');
