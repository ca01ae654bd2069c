/**
 * Image layers and their tags. Three layers, as the reference has them:
 *
 *   base        Python, compilers, git (per Python version; made by `perfmine images base` or supplied)
 *   repository  base + the repository's clone (every branch and tag, no checkout) + an empty venv
 *   pr          repository + checkout of the base commit + pinned requirements + the build script's work
 *
 * Every tag is derived from what went into the layer, so the same request
 * names the same images and an existing one is reused, never rebuilt:
 *   repository: <prefix>-repo:<id>-<owner>-<name>-py<X.Y>-<hash(base image id, clone state)>
 *   pr:         <prefix>-pr:<key>-<hash(repository image id, commit, Python, requirements, script)>
 * where the clone state is the clone's branches and tags with their commits
 * (and the wanted commit itself when no branch or tag has it). A repository layer that
 * already holds the wanted commit is used as it is, the oldest such first, so
 * a repository that keeps moving does not get a new clone per build and a
 * request keeps naming the same PR image. The PR layer never holds the
 * oracle patch.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { cloneUrl, type RepoRef } from '../../git/repo-store.js';
import { git, gitSucceeds } from '../../../measure/git.js';
import { abortError } from '../../process/run-process.js';
import { LayerContainer, runInFreshContainer, type ContainerLimits } from './containers.js';
import { BUILD_USER, HOME_DIR, IMAGE_ENV, LAYOUT_VERSION, REPO_DIR, ROOT, SCRATCH_DIR, VENV_DIR } from './layout.js';
import { tarArchive, tarDirectory } from './tar.js';

export type LayerKind = 'base' | 'repository' | 'pr';

export interface Layer {
  kind: LayerKind;
  /** name:tag */
  name: string;
  /** The image id (sha256:...): the layer's exact content. */
  id: string;
  /** The layer below (null for base). */
  parentId: string | null;
  /** It existed already (same tag): nothing was built. */
  reused: boolean;
  labels: Record<string, string>;
}

export function sha256(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}

/** A tag-safe piece: letters, digits, '.', '_' and '-', starting with a letter or digit. */
export function tagSafe(s: string, max: number): string {
  const cleaned = s.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, max).replace(/[.-]+$/, '');
  return cleaned || 'x';
}

export function repositorySlug(repo: RepoRef): string {
  return tagSafe(`${repo.id}-${repo.owner}-${repo.name}`.toLowerCase(), 60);
}

export function repositoryImageName(prefix: string, repo: RepoRef, python: string, baseId: string, state: string): string {
  return `${prefix}-repo:${repositorySlug(repo)}-py${python}-${sha256(LAYOUT_VERSION, baseId, state).slice(0, 12)}`;
}

export interface PrLayerInputs {
  key: string;
  repoImageId: string;
  commit: string;
  python: string;
  requirements: string[];
  script: string;
}

export function prImageName(prefix: string, i: PrLayerInputs): string {
  const hash = sha256(LAYOUT_VERSION, i.repoImageId, i.commit, i.python, i.requirements.join('\n'), i.script).slice(0, 16);
  return `${prefix}-pr:${tagSafe(i.key, 100)}-${hash}`;
}

export function splitName(name: string): { repo: string; tag: string } {
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/') ? { repo: name.slice(0, colon), tag: name.slice(colon + 1) } : { repo: name, tag: 'latest' };
}

/** Where the repository layer's clone comes from: the git source's own clone, or clone_url / GitHub. */
export function cloneSource(repo: RepoRef): string {
  if (repo.source === 'git') {
    if (!repo.gitPath) throw new Error(`${repo.owner}/${repo.name}: a git source without git_path`);
    return repo.gitPath;
  }
  return cloneUrl(repo);
}

function canonicalRefs(lines: string[]): string {
  // Peeled tags (`^{}`) are derived from the tag objects: leave them out.
  return [...new Set(lines.map((l) => l.trim()).filter((l) => l && !l.endsWith('^{}')))].sort().join('\n');
}

export interface RepositoryLayerRequest {
  prefix: string;
  repo: RepoRef;
  /** The commit the PR layer will check out: the layer must hold it. */
  commit: string;
  python: string;
  base: Layer;
  limits: ContainerLimits;
  /** For the clone and the layer together. */
  timeoutMs: number;
  /** Where the host-side clone is made before it goes into the image. */
  tmpDir: string;
  signal?: AbortSignal;
}

export type LayerOutcome = { ok: true; layer: Layer; log: string } | { ok: false; reason: string; log: string };

/**
 * The repository layer for (repository, base), reused when its tag exists.
 * The clone is made on the host with git (allow-listed environment, our own
 * credentials never passed) and copied in; the container that adds the venv
 * has no network.
 */
export async function ensureRepositoryLayer(docker: Docker, r: RepositoryLayerRequest): Promise<LayerOutcome> {
  const holding = await existingLayerWith(docker, r);
  if (holding) return { ok: true, layer: holding, log: '' };
  const source = cloneSource(r.repo);

  await mkdir(r.tmpDir, { recursive: true });
  const work = await mkdtemp(path.join(r.tmpDir, 'perfmine-clone-'));
  try {
    const clone = path.join(work, 'repo');
    await mkdir(clone);
    await git(['init', '--quiet', clone], { signal: r.signal });
    await git(['-C', clone, 'fetch', '--quiet', '--update-head-ok', '--no-tags', '--', source, '+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*'], { signal: r.signal, timeoutMs: r.timeoutMs });
    if (!(await gitSucceeds(['-C', clone, 'cat-file', '-e', `${r.commit}^{commit}`], { signal: r.signal }))) {
      // On no branch or tag (a deleted branch, a pull ref): ask for the commit itself, kept under a ref of its own.
      await gitSucceeds(['-C', clone, 'fetch', '--quiet', '--no-tags', '--', source, `+${r.commit}:refs/perfmine/commits/${r.commit}`], { signal: r.signal, timeoutMs: r.timeoutMs });
      if (!(await gitSucceeds(['-C', clone, 'cat-file', '-e', `${r.commit}^{commit}`], { signal: r.signal }))) {
        return { ok: false, reason: `commit ${r.commit} is not in ${r.repo.owner}/${r.repo.name} (on no branch or tag, and not served by itself)`, log: '' };
      }
    }
    // No background gc inside the image; no detached-HEAD advice in build logs.
    await git(['-C', clone, 'config', 'gc.auto', '0'], { signal: r.signal });
    await git(['-C', clone, 'config', 'advice.detachedHead', 'false'], { signal: r.signal });
    // The clone state names the layer: what was fetched, branches and tags with their commits.
    const fetched = canonicalRefs((await git(['-C', clone, 'for-each-ref', '--format=%(objectname) %(refname)'], { signal: r.signal })).split('\n'));
    const name = repositoryImageName(r.prefix, r.repo, r.python, r.base.id, fetched);
    const labels: Record<string, string> = {
      'perfmine.layer': 'repository', 'perfmine.python': r.python, 'perfmine.repository': `${r.repo.owner}/${r.repo.name}`,
      'perfmine.repository-id': String(r.repo.id), 'perfmine.base-image': r.base.id, 'perfmine.clone-state': sha256(fetched),
    };
    const container = await LayerContainer.create(docker, { image: r.base.id, env: IMAGE_ENV, workingDir: REPO_DIR, limits: r.limits, job: 'layer' });
    try {
      const skeleton = tarArchive([ROOT, HOME_DIR, SCRATCH_DIR, REPO_DIR].map((d) => ({ path: `${d.slice(1)}/` })), BUILD_USER);
      await container.put(skeleton, '/', r.signal);
      const tar = tarDirectory(clone, BUILD_USER);
      try {
        await container.put(tar.stream, REPO_DIR, r.signal);
        await tar.done;
      } finally {
        tar.kill();
      }
      await container.start();
      const venv = await container.step(['/bin/sh', '-c',
        `command -v python${r.python} >/dev/null || { echo "the base image has no python${r.python} on PATH" >&2; exit 127; }
python${r.python} -m venv --system-site-packages ${VENV_DIR}`], { signal: r.signal });
      if (venv.interrupted) throw abortError(r.signal);
      if (venv.code !== 0) {
        return { ok: false, reason: `creating the virtual environment failed in ${r.base.name}: ${lastLines(venv.output, 3)}`, log: venv.output };
      }
      const id = await container.commit(splitName(name).repo, splitName(name).tag, [
        `LABEL ${labelArgs(labels)}`, 'ENTRYPOINT []', 'CMD ["/bin/bash"]',
      ], `perfmine repository layer of ${r.repo.owner}/${r.repo.name}`);
      return { ok: true, layer: { kind: 'repository', name, id, parentId: r.base.id, reused: false, labels }, log: venv.output };
    } finally {
      await container.remove();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * The oldest repository layer of this repository on this base (and prefix)
 * that holds the commit, or null. Oldest first: once a layer with the commit
 * exists, the same request keeps naming it (and so the same PR image).
 */
async function existingLayerWith(docker: Docker, r: RepositoryLayerRequest): Promise<Layer | null> {
  const images = await docker.listImages({ filters: JSON.stringify({ label: [
    'perfmine.layer=repository', `perfmine.repository-id=${r.repo.id}`, `perfmine.base-image=${r.base.id}`,
  ] }) });
  const candidates = images
    .filter((i) => i.Labels?.['perfmine.repository'] === `${r.repo.owner}/${r.repo.name}`)
    .map((i) => ({ id: i.Id, labels: i.Labels ?? {}, created: i.Created, name: (i.RepoTags ?? []).find((t) => t.startsWith(`${r.prefix}-repo:`)) }))
    .filter((i): i is typeof i & { name: string } => i.name !== undefined)
    .sort((a, b) => a.created - b.created || a.name.localeCompare(b.name));
  for (const c of candidates) {
    const probe = await runInFreshContainer(docker, {
      image: c.id, cmd: ['git', '-C', REPO_DIR, 'cat-file', '-e', `${r.commit}^{commit}`], env: IMAGE_ENV, workingDir: REPO_DIR,
      limits: { pidsLimit: 64 }, timeoutMs: 60_000, signal: r.signal,
    });
    if (probe.aborted) throw abortError(r.signal);
    if (probe.code === 0) return { kind: 'repository', name: c.name, id: c.id, parentId: r.base.id, reused: true, labels: c.labels };
  }
  return null;
}

/** LABEL arguments, each value quoted as a Dockerfile string. */
export function labelArgs(labels: Record<string, string>): string {
  return Object.entries(labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ');
}

export function lastLines(text: string, n: number): string {
  return text.trim().split('\n').slice(-n).join(' | ').slice(0, 600);
}

export async function writeBuildInputs(dir: string, script: string): Promise<void> {
  await writeFile(path.join(dir, 'build.sh'), script.endsWith('\n') ? script : `${script}\n`, { mode: 0o755 });
}

export function defaultTmpDir(dataDir?: string): string {
  return dataDir ? path.join(dataDir, 'tmp') : os.tmpdir();
}
