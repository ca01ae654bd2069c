/**
 * The docker executor, configured from perfmine's settings. Stage 6 picks it
 * with PERFMINE_EXECUTOR=docker; the engine is DOCKER_HOST's (or the default
 * socket's).
 */
import os from 'node:os';
import type { Kysely } from 'kysely';
import type { Config } from '../../../config.js';
import type { Logger } from '../../../log.js';
import { DockerExecutor } from './docker-executor.js';
import { PgImageRecorder } from './records.js';

export { DockerExecutor, type DockerBuildResult, type DockerExecutorOptions } from './docker-executor.js';
export { baseImageName, makeBaseImage, BASE_PACKAGES, DEBIAN_PYTHONS } from './base-image.js';
export { connectEngine, engineStatus, reapOrphanContainers, type EngineStatus } from './engine.js';
export { PgImageRecorder, type ImageRecorder } from './records.js';
export type { Layer, LayerKind } from './layers.js';

/** Python minors from `min` to `max` (3.8 .. 3.12). */
export function pythonRange(min: string, max: string): string[] {
  const lo = Number(min.split('.')[1]);
  const hi = Number(max.split('.')[1]);
  return Array.from({ length: Math.max(0, hi - lo + 1) }, (_, i) => `3.${lo + i}`);
}

/** The engine's name in docker_images: this host, and DOCKER_HOST when it points elsewhere. */
export function engineName(config: Pick<Config, 'PERFMINE_HOST_ID'>): string {
  const host = config.PERFMINE_HOST_ID ?? os.hostname();
  return process.env.DOCKER_HOST ? `${host} ${process.env.DOCKER_HOST}` : host;
}

export function createDockerExecutor(config: Config, o: { db?: Kysely<any>; log?: Logger } = {}): DockerExecutor {
  return new DockerExecutor({
    baseImageTemplate: config.PERFMINE_DOCKER_BASE_IMAGE,
    imagePrefix: config.PERFMINE_DOCKER_IMAGE_PREFIX,
    pythons: pythonRange(config.PERFMINE_PYTHON_MIN, config.PERFMINE_PYTHON_MAX),
    buildLimits: {
      memoryMb: config.PERFMINE_DOCKER_BUILD_MEMORY_MB || undefined,
      cpus: config.PERFMINE_DOCKER_BUILD_CPUS,
      pidsLimit: config.PERFMINE_DOCKER_PIDS_LIMIT || undefined,
    },
    execPidsLimit: config.PERFMINE_DOCKER_PIDS_LIMIT,
    hostPython: config.PERFMINE_RESOLVER_PYTHON,
    dataDir: config.PERFMINE_DATA_DIR,
    repositoryTimeoutMs: config.PERFMINE_GIT_FETCH_TIMEOUT_S * 1000,
    recorder: o.db ? new PgImageRecorder(o.db, engineName(config)) : undefined,
    engine: engineName(config),
    log: o.log,
  });
}
