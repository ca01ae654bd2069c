import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { DockerExecutor, type DockerExecutorOptions } from '../../src/adapters/executors/docker/docker-executor.js';
import { connectEngine, engineStatus, findImage, ownNamePattern } from '../../src/adapters/executors/docker/engine.js';
import { baseImageName, DEFAULT_BASE_TEMPLATE } from '../../src/adapters/executors/docker/base-image.js';

export const TEST_PYTHON = '3.11';
export const BASE_TEMPLATE = process.env.PERFMINE_DOCKER_BASE_IMAGE || DEFAULT_BASE_TEMPLATE;

/**
 * Whether the docker tests can run here, and if not why, in words. Where
 * PERFMINE_REQUIRE_DOCKER=1 (CI, which starts an engine and makes the base
 * image first) a missing engine or base image is an error instead of a skip.
 */
export async function dockerTestSetup(): Promise<{ docker: Docker; skipReason: string | null }> {
  const docker = connectEngine();
  const engine = await engineStatus(docker);
  const base = baseImageName(BASE_TEMPLATE, TEST_PYTHON);
  let skipReason: string | null = null;
  if (!engine.ok) skipReason = engine.reason;
  else if (!(await findImage(docker, base))) skipReason = `no base image ${base} (make it with: npm run perfmine -- images base)`;
  if (skipReason && process.env.PERFMINE_REQUIRE_DOCKER === '1') throw new Error(`PERFMINE_REQUIRE_DOCKER=1 but ${skipReason}`);
  if (skipReason) console.warn(`[perfmine tests] docker tests skipped: ${skipReason}`);
  return { docker, skipReason };
}

/**
 * A docker executor whose repository and PR images carry a prefix of their
 * own (so a test run builds its layers afresh and removes them afterwards);
 * the base image is the shared one.
 */
export function testDockerExecutor(docker: Docker, o: Partial<DockerExecutorOptions> = {}): { executor: DockerExecutor; prefix: string; dataDir: string; cleanup(): Promise<void> } {
  const prefix = `perfmine-test-${randomBytes(4).toString('hex')}`;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'perfmine-docker-'));
  const executor = new DockerExecutor({
    docker, baseImageTemplate: BASE_TEMPLATE, imagePrefix: prefix, pythons: [TEST_PYTHON],
    buildLimits: { memoryMb: 2048, pidsLimit: 1024 }, execPidsLimit: 256, hostPython: '/usr/bin/python3',
    dataDir, repositoryTimeoutMs: 300_000, ...o,
  });
  return {
    executor, prefix, dataDir,
    async cleanup() {
      await removeImagesWithPrefix(docker, prefix);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function removeImagesWithPrefix(docker: Docker, prefix: string): Promise<void> {
  const images = await docker.listImages();
  // Children (PR layers) before their parents (repository layers).
  const ours = images.filter((i) => (i.RepoTags ?? []).some((t) => t.startsWith(`${prefix}-`)))
    .sort((a, b) => Number((b.RepoTags ?? []).some((t) => t.startsWith(`${prefix}-pr:`))) - Number((a.RepoTags ?? []).some((t) => t.startsWith(`${prefix}-pr:`))));
  for (const image of ours) await docker.getImage(image.Id).remove({ force: true }).catch(() => undefined);
}

/** Containers this test process started that still exist (there should be none between tests). */
export async function ownContainers(docker: Docker): Promise<string[]> {
  const all = await docker.listContainers({ all: true });
  const own = ownNamePattern();
  return all.flatMap((c) => c.Names.filter((n) => own.test(n)));
}
