/**
 * The docker executor (PERFMINE_EXECUTOR=docker): environments are images,
 * built in three layers (layers.ts) and known by image id; code runs in a
 * fresh container of that exact image with no network (containers.ts).
 *
 * A build: the base image for the Python version (missing: a recorded
 * reason), the repository layer (made or reused), then the PR layer in a
 * container with no network: the wheelhouse (fetched on the host from the
 * index) installed with --no-index, the base commit checked out, the build
 * script run in the checkout. The container is committed as the PR image and
 * removed. Past `timeoutMs` (download, install and script together) the
 * container and everything in it is killed and removed.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import type { Logger } from '../../../log.js';
import { childEnv } from '../../process/child-env.js';
import { abortError } from '../../process/run-process.js';
import {
  EnvironmentGoneError, type BuildRequest, type BuildResult, type EnvironmentRef, type ExecOptions, type ExecResult, type ExecSession, type Executor,
  type SessionOptions,
} from '../executor.js';
import { openDockerSession } from './session.js';
import { baseImageName } from './base-image.js';
import { LayerContainer, runInFreshContainer, type ContainerLimits } from './containers.js';
import { connectEngine, engineStatus, findImage, reapOrphanContainers } from './engine.js';
import {
  ensureRepositoryLayer, labelArgs, lastLines, prImageName, sha256, splitName, writeBuildInputs, type Layer,
} from './layers.js';
import { BUILD_SCRIPT, IMAGE_ENV, REPO_DIR, ROOT, SCRATCH_DIR, VENV_PYTHON, WHEELHOUSE_DIR } from './layout.js';
import { PgImageRecorder, type ImageRecorder, type LayerRecord } from './records.js';
import type { Db } from '../../../db/connect.js';
import { filesWithParents, safeRelativePath, tarArchive, tarDirectory } from './tar.js';
import { fillWheelhouse, REQUIREMENTS_FILE } from './wheelhouse.js';
import { BUILD_USER } from './layout.js';
import { KeyedLock } from '../../keyed-lock.js';

export interface DockerExecutorOptions {
  /** Default: dockerode against DOCKER_HOST or the default socket. */
  docker?: Docker;
  /** Base image per Python version; `{python}` is replaced (PERFMINE_DOCKER_BASE_IMAGE). */
  baseImageTemplate: string;
  /** Repository and PR images are `<prefix>-repo:...` and `<prefix>-pr:...` (PERFMINE_DOCKER_IMAGE_PREFIX). */
  imagePrefix: string;
  /** Versions available() looks for a base image of (PERFMINE_PYTHON_MIN..MAX). */
  pythons: string[];
  /** Limits of build containers (PERFMINE_DOCKER_BUILD_MEMORY_MB, _BUILD_CPUS, _PIDS_LIMIT). */
  buildLimits: ContainerLimits;
  /** pids limit of exec containers. */
  execPidsLimit: number;
  /** The host interpreter whose pip fills wheelhouses (PERFMINE_RESOLVER_PYTHON). */
  hostPython: string;
  /** Temporary clones and wheelhouses go under DATA_DIR/tmp, pip's cache under DATA_DIR/pip-cache. */
  dataDir: string;
  /** Cloning the repository and making its layer (PERFMINE_GIT_FETCH_TIMEOUT_S). */
  repositoryTimeoutMs: number;
  recorder?: ImageRecorder;
  /** This engine's name in docker_images (see engineName). */
  engine?: string;
  log?: Logger;
}

/** What build() tells beyond the contract: which layers it used, made or reused. */
export interface DockerBuildResult extends BuildResult {
  layers: { base: Layer | null; repository: Layer | null; pr: Layer | null };
}

/** The build log keeps this much of its end. */
const LOG_TAIL_BYTES = 64 * 1024;

export class DockerExecutor implements Executor {
  readonly kind = 'docker' as const;
  readonly docker: Docker;
  private readonly locks = new KeyedLock();
  private reaped = false;

  /** Records layers in docker_images from now on (the daemon's database, known after start). */
  useDatabase(db: Db): void {
    this.o.recorder ??= new PgImageRecorder(db, this.o.engine ?? os.hostname());
  }

  constructor(private readonly o: DockerExecutorOptions) {
    this.docker = o.docker ?? connectEngine();
  }

  async available(signal?: AbortSignal): Promise<{ ok: true } | { ok: false; reason: string }> {
    const engine = await engineStatus(this.docker, { signal });
    if (!engine.ok) return engine;
    await this.reapOnce();
    const found = await this.baseImages();
    if (found.length === 0) {
      return {
        ok: false,
        reason: `no base image: none of ${this.o.pythons.map((p) => baseImageName(this.o.baseImageTemplate, p)).join(', ')} exists ` +
          `(make one offline with \`perfmine images base --python 3.11\`)`,
      };
    }
    return { ok: true };
  }

  /** The Python versions that have a base image now. */
  async baseImages(): Promise<Array<{ python: string; name: string; id: string }>> {
    const out = [];
    for (const python of this.o.pythons) {
      const name = baseImageName(this.o.baseImageTemplate, python);
      const image = await findImage(this.docker, name);
      if (image) out.push({ python, name, id: image.id });
    }
    return out;
  }

  async build(req: BuildRequest, signal: AbortSignal): Promise<DockerBuildResult> {
    const started = performance.now();
    const layers: DockerBuildResult['layers'] = { base: null, repository: null, pr: null };
    const result = (ok: boolean, reason: string | null, logTail: string, env: EnvironmentRef | null = null): DockerBuildResult => ({
      ok, reason, logTail: tail(logTail), durationMs: Math.round(performance.now() - started), env, layers,
    });
    if (signal.aborted) throw abortError(signal);
    await this.reapOnce();

    const baseName = baseImageName(this.o.baseImageTemplate, req.python);
    const base = await findImage(this.docker, baseName);
    if (!base) {
      return result(false, `no base image ${baseName} for Python ${req.python} ` +
        `(perfmine images base makes one offline for 3.11; for other versions supply an image named ${baseName})`, '');
    }
    layers.base = { kind: 'base', name: baseName, id: base.id, parentId: null, reused: true, labels: base.labels };
    await this.record(layers.base, req, null);

    const repo = await this.locks.run(`repo:${req.repo.id}:${base.id}`, () => ensureRepositoryLayer(this.docker, {
      prefix: this.o.imagePrefix, repo: req.repo, commit: req.commit, python: req.python, base: layers.base!, limits: this.o.buildLimits,
      timeoutMs: this.o.repositoryTimeoutMs, tmpDir: this.tmpDir(), signal,
    }));
    if (!repo.ok) return result(false, repo.reason, repo.log);
    layers.repository = repo.layer;
    await this.record(repo.layer, req, null);

    const name = prImageName(this.o.imagePrefix, {
      key: req.key, repoImageId: repo.layer.id, commit: req.commit, python: req.python, requirements: req.requirements, script: req.script,
    });
    return this.locks.run(`pr:${name}`, async () => {
      const existing = await findImage(this.docker, name);
      if (existing && existing.labels['perfmine.layer'] === 'pr') {
        layers.pr = { kind: 'pr', name, id: existing.id, parentId: repo.layer.id, reused: true, labels: existing.labels };
        await this.record(layers.pr, req, req.commit);
        return result(true, null, `reused ${name} (${existing.id.slice(7, 19)}), built ${existing.created} from the same inputs`, this.environment(name, existing.id));
      }
      const built = await this.buildPrLayer(req, name, repo.layer, signal);
      if (!built.ok) return result(false, built.reason, built.log);
      layers.pr = built.layer;
      await this.record(built.layer, req, req.commit);
      return result(true, null, built.log, this.environment(name, built.layer.id));
    });
  }

  private async buildPrLayer(req: BuildRequest, name: string, repo: Layer, signal: AbortSignal): Promise<{ ok: true; layer: Layer; log: string } | { ok: false; reason: string; log: string }> {
    const deadline = AbortSignal.timeout(req.timeoutMs);
    const both = AbortSignal.any([signal, deadline]);
    const timedOut = () => `timed out after ${Math.round(req.timeoutMs / 1000)} s`;
    const log: string[] = [];
    await mkdir(this.tmpDir(), { recursive: true });
    const work = await mkdtemp(path.join(this.tmpDir(), 'perfmine-build-'));
    let container: LayerContainer | null = null;
    try {
      log.push(`$ pip download --no-deps --only-binary=:all: --python-version ${req.python} (${req.requirements.length} pinned requirements, on the host)`);
      const wheels = await fillWheelhouse({
        requirements: req.requirements, indexUrl: req.indexUrl, python: req.python, dir: path.join(work, 'wheelhouse'),
        hostPython: this.o.hostPython, cacheDir: path.join(this.o.dataDir, 'pip-cache'), timeoutMs: req.timeoutMs, signal: both,
      });
      log.push(wheels.output.trim());
      if (signal.aborted) throw abortError(signal);
      if (!wheels.ok) return { ok: false, reason: deadline.aborted ? timedOut() : wheels.reason, log: log.join('\n') };
      await writeBuildInputs(work, req.script);

      container = await LayerContainer.create(this.docker, { image: repo.id, env: IMAGE_ENV, workingDir: REPO_DIR, limits: this.o.buildLimits, job: 'build' });
      const steps = container;
      const run = async (title: string, cmd: string[]) => {
        log.push(`$ ${title}`);
        const r = await steps.step(cmd, { signal: both, maxOutputBytes: LOG_TAIL_BYTES });
        log.push(r.output.trimEnd());
        if (r.interrupted) throw new Error('interrupted'); // the catch below says by what
        return r;
      };
      try {
        const inputs = tarDirectory(work, BUILD_USER, ['wheelhouse', 'build.sh']);
        try {
          await container.put(inputs.stream, ROOT, both);
          await inputs.done;
        } finally {
          inputs.kill();
        }
        await container.start();
        if (req.requirements.length > 0) {
          const install = await run(`pip install --no-index --no-deps -r ${WHEELHOUSE_DIR}/${REQUIREMENTS_FILE}`, [
            VENV_PYTHON, '-m', 'pip', 'install', '--isolated', '--no-index', '--no-deps', '--disable-pip-version-check', '--no-input',
            '--no-cache-dir', '--find-links', WHEELHOUSE_DIR, '-r', `${WHEELHOUSE_DIR}/${REQUIREMENTS_FILE}`,
          ]);
          if (install.code !== 0) return { ok: false, reason: `installing dependencies failed: ${lastLines(errorLines(install.output), 3)}`, log: log.join('\n') };
        }
        const checkout = await run(`git checkout --detach ${req.commit}`, ['/bin/sh', '-c',
          `git cat-file -e "$1^{commit}" 2>/dev/null || { echo "commit $1 is not in the repository's clone" >&2; exit 3; }
git checkout --quiet --detach --force "$1"`, 'checkout', req.commit]);
        if (checkout.code !== 0) return { ok: false, reason: lastLines(checkout.output, 2) || `git checkout exited ${checkout.code}`, log: log.join('\n') };
        const script = await run('bash build.sh (no network)', ['bash', BUILD_SCRIPT]);
        if (script.code !== 0) return { ok: false, reason: `build script exited ${script.code}`, log: log.join('\n') };
      } catch (err) {
        if (signal.aborted) throw abortError(signal);
        if (deadline.aborted) {
          log.push(`perfmine: ${timedOut()}: the build container and everything in it were killed`);
          return { ok: false, reason: timedOut(), log: log.join('\n') };
        }
        throw err;
      }
      const labels: Record<string, string> = {
        'perfmine.layer': 'pr', 'perfmine.key': req.key, 'perfmine.python': req.python,
        'perfmine.repository': `${req.repo.owner}/${req.repo.name}`, 'perfmine.repository-id': String(req.repo.id),
        'perfmine.commit': req.commit, 'perfmine.repository-image': repo.id, 'perfmine.base-image': repo.parentId ?? '',
        'perfmine.requirements-sha256': sha256(req.requirements.join('\n')), 'perfmine.script-sha256': sha256(req.script),
      };
      const { repo: repository, tag } = splitName(name);
      const id = await container.commit(repository, tag, [`LABEL ${labelArgs(labels)}`, 'ENTRYPOINT []', 'CMD ["/bin/bash"]'],
        `perfmine PR layer ${req.key} at ${req.commit}`);
      return { ok: true, layer: { kind: 'pr', name, id, parentId: repo.id, reused: false, labels }, log: log.join('\n') };
    } finally {
      if (container) await container.remove();
      await rm(work, { recursive: true, force: true });
    }
  }

  async exec(env: EnvironmentRef, argv: string[], opts: ExecOptions): Promise<ExecResult> {
    if (argv.length === 0) throw new Error('exec needs a command');
    const image = imageOf(env);
    const workingDir = opts.cwd ? `${REPO_DIR}/${safeRelativePath(opts.cwd)}` : REPO_DIR;
    // Extras pass the same secret filter as every child; nothing is inherited from this process.
    const extras = childEnv(opts.env ?? {}, { from: {} }) as Record<string, string>;
    const files = opts.files && Object.keys(opts.files).length ? tarArchive(filesWithParents(opts.files), BUILD_USER) : undefined;
    const r = await runInFreshContainer(this.docker, {
      image, cmd: argv, env: { ...IMAGE_ENV, ...extras, PERFMINE_SCRATCH: SCRATCH_DIR }, workingDir,
      limits: { cpus: opts.cpus, memoryMb: opts.memoryMb, pidsLimit: this.o.execPidsLimit },
      archive: files, archivePath: SCRATCH_DIR, timeoutMs: opts.timeoutMs, signal: opts.signal,
      maxOutputBytes: opts.maxOutputBytes, onLine: opts.onLine,
    });
    return { code: r.code, stdout: r.stdout, stderr: r.stderr, timedOut: r.timedOut, aborted: r.aborted, durationMs: r.durationMs };
  }

  async openSession(env: EnvironmentRef, opts: SessionOptions): Promise<ExecSession> {
    const image = imageOf(env);
    if (!(await findImage(this.docker, image))) throw new EnvironmentGoneError(env.ref, `no image ${image}`);
    await this.reapOnce();
    return openDockerSession(this.docker, env, image, { ...opts, pidsLimit: this.o.execPidsLimit });
  }

  async discard(env: EnvironmentRef): Promise<void> {
    const image = imageOf(env);
    try {
      // Every tag of the image goes with it; its layers stay while another image (a sibling PR) uses them.
      await this.docker.getImage(image).remove({ force: true });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
    await this.o.recorder?.discarded(image);
  }

  private environment(name: string, id: string): EnvironmentRef {
    return { executor: 'docker', ref: `${name}@${id}`, digest: id, python: VENV_PYTHON, workdir: REPO_DIR };
  }

  private async record(layer: Layer, req: BuildRequest, commit: string | null): Promise<void> {
    if (!this.o.recorder) return;
    const size = await findImage(this.docker, layer.id).then((i) => i?.size ?? null, () => null);
    const rec: LayerRecord = {
      ...layer, python: req.python, repositoryId: layer.kind === 'base' ? null : req.repo.id, commit,
      buildKey: layer.kind === 'pr' ? req.key : null, sizeBytes: size,
    };
    await this.o.recorder.used(rec);
  }

  private tmpDir(): string {
    return path.join(this.o.dataDir, 'tmp');
  }

  private async reapOnce(): Promise<void> {
    if (this.reaped) return;
    this.reaped = true;
    const reaped = await reapOrphanContainers(this.docker).catch(() => []);
    if (reaped.length) this.o.log?.warn({ containers: reaped }, 'removed containers left by perfmine processes that died');
  }

}

/** The image an environment runs: its id (the verified content), never a tag that could have moved. */
function imageOf(env: EnvironmentRef): string {
  if (env.executor !== 'docker') throw new Error(`not a docker environment: ${env.ref}`);
  const id = /^sha256:[0-9a-f]{64}$/.test(env.digest) ? env.digest : /@(sha256:[0-9a-f]{64})$/.exec(env.ref)?.[1];
  if (!id) throw new Error(`not an image id: ${env.digest || env.ref}`);
  return id;
}

function errorLines(output: string): string {
  const errors = output.split('\n').filter((l) => l.startsWith('ERROR:'));
  return errors.length ? errors.join('\n') : output;
}

function tail(text: string): string {
  const bytes = Buffer.from(text);
  return bytes.length <= LOG_TAIL_BYTES ? text : bytes.subarray(bytes.length - LOG_TAIL_BYTES).toString('utf8');
}
