/**
 * Stage 8's targets from the settings: the dataset targets
 * PERFMINE_PUBLISH_TARGETS names (`local`, `hub`; remote ones first, the
 * local directory last) and, when PERFMINE_PUBLISH_REGISTRY is set, the
 * registry docker environments are pushed to.
 */
import path from 'node:path';
import type Docker from 'dockerode';
import type { Config } from '../../config.js';
import { connectEngine } from '../executors/docker/engine.js';
import { HubDatasetTarget } from './hub.js';
import { LocalDirectoryTarget } from './local-directory.js';
import { DockerRegistry } from './registry.js';
import type { DatasetTarget, ImageRegistry } from './target.js';

export type { DatasetChange, DatasetFile, DatasetTarget, ImageRegistry, PushedImage, TargetReceipt } from './target.js';
export { ImageGoneError } from './target.js';
export { HUB_GROUP, REGISTRY_GROUP } from './failures.js';
export { imageRepositoryAndTag } from './registry.js';

/** The local target's directory: PERFMINE_PUBLISH_DIR, else PERFMINE_DATA_DIR/published. */
export function publishDir(config: Pick<Config, 'PERFMINE_PUBLISH_DIR' | 'PERFMINE_DATA_DIR'>): string {
  return config.PERFMINE_PUBLISH_DIR ?? path.join(config.PERFMINE_DATA_DIR, 'published');
}

export function createDatasetTargets(config: Config): DatasetTarget[] {
  const targets: DatasetTarget[] = [];
  const wanted = new Set(config.PERFMINE_PUBLISH_TARGETS);
  if (wanted.has('hub')) {
    targets.push(new HubDatasetTarget({
      hubUrl: config.PERFMINE_HF_HUB_URL, repo: config.PERFMINE_HF_REPO!, token: config.PERFMINE_HF_TOKEN!,
      timeoutMs: config.PERFMINE_PUBLISH_TIMEOUT_S * 1000,
    }));
  }
  if (wanted.has('local')) targets.push(new LocalDirectoryTarget(publishDir(config)));
  return targets;
}

export function createImageRegistry(config: Config, docker?: Docker): ImageRegistry | null {
  if (!config.PERFMINE_PUBLISH_REGISTRY) return null;
  return new DockerRegistry({
    docker: docker ?? connectEngine(), registry: config.PERFMINE_PUBLISH_REGISTRY,
    username: config.PERFMINE_PUBLISH_REGISTRY_USERNAME, password: config.PERFMINE_PUBLISH_REGISTRY_PASSWORD,
    timeoutMs: config.PERFMINE_PUBLISH_TIMEOUT_S * 1000,
  });
}
