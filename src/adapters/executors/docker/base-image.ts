/**
 * The base layer: an operating system with Python, a compiler and git, per
 * Python version. No image can be pulled on an offline machine, so perfmine
 * makes one from Debian's packages: debootstrap into a directory, then
 * `docker import` of that directory. Debian ships one Python per release, so
 * only the versions of the releases below can be made this way; any other
 * base image (built elsewhere, loaded with `docker load`) works when it is
 * named as PERFMINE_DOCKER_BASE_IMAGE says and has python3.X, its venv
 * module and git.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { childEnv } from '../../process/child-env.js';
import { runProcess } from '../../process/run-process.js';
import { findImage, withSignal } from './engine.js';
import { runInFreshContainer } from './containers.js';
import { tarDirectory } from './tar.js';

/** Debian releases and the one Python each ships (python3). */
export const DEBIAN_PYTHONS: Record<string, { suite: string; tested: boolean }> = {
  '3.9': { suite: 'bullseye', tested: false },
  '3.11': { suite: 'bookworm', tested: true },
  '3.13': { suite: 'trixie', tested: false },
};

/**
 * What the base image holds: Python with venv, pip and headers; the tooling
 * stage 4 leaves to the base (setuptools, wheel, pytest, hypothesis; their
 * wheels too, so pip's build isolation works offline); a C and C++ compiler
 * and make for extensions; git for checkouts inside the image.
 */
export const BASE_PACKAGES = [
  'python3', 'python3-venv', 'python3-pip', 'python3-dev', 'python3-setuptools', 'python3-wheel', 'python3-wheel-whl',
  'python3-pytest', 'python3-hypothesis', 'gcc', 'g++', 'make', 'libc6-dev', 'ca-certificates', 'git',
];

export const DEFAULT_BASE_TEMPLATE = 'perfmine-base:py{python}';

/** The base image's name for a Python version: `{python}` in the template is replaced (e.g. perfmine-base:py3.11). */
export function baseImageName(template: string, python: string): string {
  return template.replaceAll('{python}', python);
}

/** The Debian mirror apt uses on this machine (deb822 or one-line sources), else deb.debian.org. */
export function debianMirror(): string {
  const deb822 = '/etc/apt/sources.list.d/debian.sources';
  if (existsSync(deb822)) {
    for (const stanza of readFileSync(deb822, 'utf8').split(/\n\s*\n/)) {
      const uri = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
      if (uri && !/security/.test(stanza.match(/^Suites:.*$/m)?.[0] ?? '') && !/-security/.test(uri)) return uri;
    }
  }
  if (existsSync('/etc/apt/sources.list')) {
    const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+\s+main/m.exec(readFileSync('/etc/apt/sources.list', 'utf8'));
    if (m && !/security/.test(m[1])) return m[1];
  }
  return 'http://deb.debian.org/debian';
}

export interface MakeBaseImageOptions {
  python: string;
  /** Image name:tag (default: the template's name for the version). */
  name: string;
  /** Rebuild even when the image exists. */
  force?: boolean;
  mirror?: string;
  /** Where the root filesystem is made (default: the system temp directory); it is removed afterwards. */
  workDir?: string;
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
}

export interface BaseImageResult {
  name: string;
  id: string;
  reused: boolean;
  python: string;
  suite: string | null;
  seconds: number;
}

export class BaseImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BaseImageError';
  }
}

/** Makes (or finds) the offline base image for one Python version. */
export async function makeBaseImage(docker: Docker, o: MakeBaseImageOptions): Promise<BaseImageResult> {
  const started = performance.now();
  const seconds = () => Math.round((performance.now() - started) / 100) / 10;
  const say = o.onProgress ?? (() => undefined);
  const existing = await findImage(docker, o.name);
  if (existing && !o.force) {
    say(`${o.name} exists (${existing.id.slice(7, 19)}): reused (--force makes it again)`);
    return { name: o.name, id: existing.id, reused: true, python: o.python, suite: existing.labels['perfmine.suite'] ?? null, seconds: seconds() };
  }
  const known = DEBIAN_PYTHONS[o.python];
  if (!known) {
    const have = Object.entries(DEBIAN_PYTHONS).map(([py, d]) => `${py} (${d.suite})`).join(', ');
    throw new BaseImageError(`Python ${o.python} cannot be made offline: Debian ships one Python per release (${have}; this machine's mirror is tested with bookworm's 3.11). ` +
      `Build or load an image with python${o.python}, its venv module and git some other way, and name it ${o.name}.`);
  }
  if (process.getuid?.() !== 0) throw new BaseImageError('debootstrap needs root (it makes device nodes and chroots): run `perfmine images base` as root');
  const debootstrap = ['/usr/sbin/debootstrap', '/sbin/debootstrap'].find((p) => existsSync(p));
  if (!debootstrap) throw new BaseImageError('debootstrap is not installed (Debian: apt-get install -y debootstrap)');

  const mirror = o.mirror ?? debianMirror();
  if (o.workDir) await mkdir(o.workDir, { recursive: true });
  const work = await mkdtemp(path.join(o.workDir ?? os.tmpdir(), 'perfmine-rootfs-'));
  const rootfs = path.join(work, 'rootfs');
  try {
    say(`debootstrap ${known.suite} from ${mirror} into ${rootfs} (a minute or two)`);
    const boot = await runProcess(debootstrap, [
      '--variant=minbase', `--include=${BASE_PACKAGES.join(',')}`, known.suite, rootfs, mirror,
    ], {
      env: childEnv({ PATH: `/usr/sbin:/sbin:${process.env.PATH ?? '/usr/bin:/bin'}`, DEBIAN_FRONTEND: 'noninteractive' }),
      timeoutMs: 30 * 60_000, signal: o.signal, maxOutputBytes: 64 * 1024,
      onLine: (line) => { if (/^I: (Retrieving InRelease|Resolving dependencies of base|Installing core|Unpacking the base|Configuring the base|Base system installed)/.test(line)) say(line); },
    });
    if (boot.aborted) throw abort(o.signal);
    if (boot.code !== 0) throw new BaseImageError(`debootstrap failed (${boot.timedOut ? 'timed out' : `exit ${boot.code}`}): ${(boot.stdoutTail + boot.stderrTail).trim().split('\n').slice(-8).join('\n')}`);
    // Downloaded .deb files and apt's lists are no use inside the image.
    for (const dir of ['var/cache/apt/archives', 'var/lib/apt/lists']) {
      const full = path.join(rootfs, dir);
      if (!existsSync(full)) continue;
      for (const f of await readdir(full)) if (f !== 'partial' && f !== 'lock') await rm(path.join(full, f), { recursive: true, force: true });
    }
    say(`importing ${rootfs} as ${o.name}`);
    const id = await importRootfs(docker, rootfs, o.name, [
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      'ENV LANG=C.UTF-8',
      `LABEL perfmine.layer=base perfmine.python=${o.python} perfmine.suite=${known.suite}`,
      'CMD ["/bin/bash"]',
    ], o.signal);
    const check = await checkBaseImage(docker, id, o.python);
    if (!check.ok) {
      await docker.getImage(id).remove({ force: true }).catch(() => undefined);
      throw new BaseImageError(`the image made from ${known.suite} is not usable for Python ${o.python}: ${check.reason}`);
    }
    say(`${o.name} is ${id.slice(7, 19)} (${check.version}) after ${seconds()} s`);
    return { name: o.name, id, reused: false, python: o.python, suite: known.suite, seconds: seconds() };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function importRootfs(docker: Docker, rootfs: string, name: string, changes: string[], signal?: AbortSignal): Promise<string> {
  const colon = name.lastIndexOf(':');
  const [repo, tag] = colon > name.lastIndexOf('/') ? [name.slice(0, colon), name.slice(colon + 1)] : [name, 'latest'];
  const tar = tarDirectory(rootfs, { uid: 0, gid: 0 });
  try {
    const progress = await withSignal(docker.importImage(tar.stream, { repo, tag, changes } as object), signal);
    const messages = await readJsonStream(progress);
    await tar.done;
    const failed = messages.find((m) => m.error);
    if (failed) throw new BaseImageError(`docker import failed: ${failed.error}`);
  } finally {
    tar.kill();
  }
  const made = await findImage(docker, name);
  if (!made) throw new BaseImageError(`docker import finished but ${name} is not there`);
  return made.id;
}

function readJsonStream(stream: NodeJS.ReadableStream): Promise<Array<{ error?: string; status?: string }>> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.on('data', (d: Buffer) => { text += d.toString(); });
    stream.once('error', reject);
    stream.once('end', () => resolve(text.split('\n').filter((l) => l.trim()).map((l) => {
      try {
        return JSON.parse(l) as { error?: string; status?: string };
      } catch {
        return { status: l };
      }
    })));
  });
}

/** Whether `image` has python<version> with venv, and git: what the repository layer needs. */
export async function checkBaseImage(docker: Docker, image: string, python: string, signal?: AbortSignal): Promise<{ ok: true; version: string } | { ok: false; reason: string }> {
  const script = `command -v python${python} >/dev/null || { echo "no python${python} on PATH" >&2; exit 3; }
python${python} -c 'import venv, ensurepip, sys; print(sys.version.split()[0])' || exit 4
command -v git >/dev/null || { echo "no git on PATH" >&2; exit 5; }`;
  const r = await runInFreshContainer(docker, {
    image, cmd: ['/bin/sh', '-c', script], env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
    workingDir: '/', limits: { pidsLimit: 256 }, timeoutMs: 60_000, signal,
  });
  if (r.code === 0) return { ok: true, version: `Python ${r.stdout.trim()}` };
  return { ok: false, reason: (r.stderr.trim() || r.stdout.trim() || `exit ${r.code}`).split('\n').slice(-3).join(' ') };
}

function abort(signal?: AbortSignal): Error {
  return signal?.reason instanceof Error ? signal.reason : new DOMException('aborted', 'AbortError');
}
