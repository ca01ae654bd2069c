/**
 * `perfmine images base`: the docker executor's offline base image (Debian's
 * packages, debootstrap, docker import), made once and reused.
 */
import { baseImageName, makeBaseImage, type BaseImageResult } from '../adapters/executors/docker/base-image.js';
import { connectEngine, engineStatus } from '../adapters/executors/docker/engine.js';

export interface ImagesBaseOptions {
  python: string;
  /** Image name:tag; default: the template (PERFMINE_DOCKER_BASE_IMAGE) for the version. */
  tag?: string;
  force?: boolean;
  mirror?: string;
  template: string;
  workDir?: string;
  signal?: AbortSignal;
  onProgress?: (line: string) => void;
}

export async function imagesBase(o: ImagesBaseOptions): Promise<BaseImageResult> {
  const docker = connectEngine();
  const engine = await engineStatus(docker, { signal: o.signal });
  if (!engine.ok) throw new Error(engine.reason);
  return makeBaseImage(docker, {
    python: o.python, name: o.tag ?? baseImageName(o.template, o.python), force: o.force, mirror: o.mirror,
    workDir: o.workDir, signal: o.signal, onProgress: o.onProgress,
  });
}
