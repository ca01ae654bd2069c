/**
 * The lock of a verified environment and the files that rebuild it: what
 * stage 8 publishes beside the Parquet files (`environments/<task>/`), for the
 * local executor (whose environment is a directory on one machine) and the
 * docker executor alike (whose exact image is pushed too). Pure.
 *
 * The lock holds what the environment was built from: the Python version,
 * stage 4's pinned requirements (with their hashes), the build script stage 6
 * verified, and the base commit. Never the repository's clone URL as stored
 * (it may carry credentials or a local path) nor the index URL: the public
 * repository on GitHub and any PyPI-compatible index (the pins carry hashes).
 */

export interface EnvironmentLock {
  format: 'perfmine-environment-lock/1';
  task_id: string;
  repository: string;
  repository_url: string;
  base_commit: string;
  python: string;
  /** Pinned requirement lines: `name==version --hash=sha256:...`. */
  requirements: string[];
  build_script: string;
  /** Tooling every environment has besides the pins (the base image's, unpinned). */
  base_tooling: string[];
  executor: string;
  environment_digest: string;
  /** docker: the verified image as pushed (`name@digest`). */
  image: string | null;
}

/** What the base environment provides (stage 4 leaves these out of the pins). */
export const BASE_TOOLING = ['pip', 'setuptools', 'wheel', 'pytest', 'hypothesis'];

export interface LockInputs {
  taskId: string;
  owner: string;
  repo: string;
  baseCommit: string;
  python: string;
  requirements: readonly string[];
  buildScript: string;
  executor: string;
  environmentDigest: string;
  image: string | null;
}

export function environmentLock(i: LockInputs): EnvironmentLock {
  return {
    format: 'perfmine-environment-lock/1',
    task_id: i.taskId,
    repository: `${i.owner}/${i.repo}`,
    repository_url: `https://github.com/${i.owner}/${i.repo}.git`,
    base_commit: i.baseCommit,
    python: i.python,
    requirements: [...i.requirements],
    build_script: i.buildScript,
    base_tooling: BASE_TOOLING,
    executor: i.executor,
    environment_digest: i.environmentDigest,
    image: i.image,
  };
}

const HASHED = /--hash=sha256:[0-9a-f]{64}/;

/** A Dockerfile that rebuilds the environment from the lock (network needed: base image, index, repository). */
export function dockerfileFor(lock: EnvironmentLock): string {
  const requireHashes = lock.requirements.length > 0 && lock.requirements.every((r) => HASHED.test(r));
  const lines = [
    `# Rebuilds the environment perfmine verified for ${lock.repository} (task ${lock.task_id}):`,
    `# Python ${lock.python}, the pinned requirements (requirements.txt), the base commit`,
    `# ${lock.base_commit} checked out and built in place by build.sh.`,
    lock.image ? `# The exact verified image: ${lock.image}` : `# Verified by perfmine's ${lock.executor} executor as ${lock.environment_digest}.`,
    `#   docker build -t ${lock.task_id.toLowerCase().replace(/[^a-z0-9._-]/g, '-')} .`,
    `FROM python:${lock.python}-slim-bookworm`,
    'RUN apt-get update && apt-get install -y --no-install-recommends git gcc g++ make \\',
    ' && rm -rf /var/lib/apt/lists/*',
    'RUN python -m venv --system-site-packages /perfmine/venv',
    'ENV VIRTUAL_ENV=/perfmine/venv PATH=/perfmine/venv/bin:$PATH',
    `RUN pip install --no-cache-dir ${lock.base_tooling.join(' ')}`,
    'COPY requirements.txt build.sh /perfmine/',
    lock.requirements.length
      ? `RUN pip install --no-cache-dir --no-deps${requireHashes ? ' --require-hashes' : ''} -r /perfmine/requirements.txt`
      : '# (no pinned requirements)',
    `ARG REPOSITORY_URL=${lock.repository_url}`,
    `RUN git clone "$REPOSITORY_URL" /perfmine/repo && git -C /perfmine/repo checkout --detach ${lock.base_commit}`,
    'WORKDIR /perfmine/repo',
    'RUN bash /perfmine/build.sh',
    '',
  ];
  return lines.join('\n');
}

/** The files of `environments/<task>/`: Dockerfile, requirements.txt, build.sh and the lock as JSON. */
export function environmentFiles(lock: EnvironmentLock, dir: string): { path: string; text: string }[] {
  const script = lock.build_script.endsWith('\n') ? lock.build_script : `${lock.build_script}\n`;
  return [
    { path: `${dir}/Dockerfile`, text: dockerfileFor(lock) },
    { path: `${dir}/requirements.txt`, text: lock.requirements.map((r) => `${r}\n`).join('') },
    { path: `${dir}/build.sh`, text: script },
    { path: `${dir}/perfmine-lock.json`, text: `${JSON.stringify(lock, null, 2)}\n` },
  ];
}
