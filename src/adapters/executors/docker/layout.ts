/**
 * Where things are inside perfmine's images, and who runs there. Stage 7
 * (benchmarks) and stage 8 (publishing) read the same paths from
 * EnvironmentRef (`python`, `workdir`); the rest is this adapter's business.
 */

/** Everything perfmine puts into an image lives under here, owned by the build user. */
export const ROOT = '/perfmine';
/** The repository's working tree (the checkout root: EnvironmentRef.workdir). */
export const REPO_DIR = `${ROOT}/repo`;
/** The virtual environment (Python of the base image, its system site-packages visible: pytest, setuptools, wheel). */
export const VENV_DIR = `${ROOT}/venv`;
export const VENV_PYTHON = `${VENV_DIR}/bin/python`;
/** HOME of the build user (pip, git and the build script may write dotfiles there). */
export const HOME_DIR = `${ROOT}/home`;
/** Files an exec is given ($PERFMINE_SCRATCH), never inside the checkout. */
export const SCRATCH_DIR = `${ROOT}/scratch`;
/** The wheels that were installed, and requirements.txt: kept, so a rebuild inside the image (stage 7) needs no index. */
export const WHEELHOUSE_DIR = `${ROOT}/wheelhouse`;
/** The build script that made the image (kept, for the record). */
export const BUILD_SCRIPT = `${ROOT}/build.sh`;
/** Wheels of pip, setuptools and wheel that Debian's python3-*-whl packages ship: build isolation works offline from them. */
export const SYSTEM_WHEELS_DIR = '/usr/share/python-wheels';

/**
 * Builds and execs run as this unprivileged user (numeric, so any base image
 * works without a passwd entry), with every capability dropped.
 */
export const BUILD_USER = { uid: 1000, gid: 1000 } as const;
export const BUILD_USER_SPEC = `${BUILD_USER.uid}:${BUILD_USER.gid}`;

const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The whole environment of perfmine's containers: nothing comes from the
 * host's environment, so no token, key or database URL can reach a build
 * script or a benchmark. pip is told to stay offline (there is no network
 * anyway) and to find what it needs in the wheelhouse and Debian's wheels.
 */
export const IMAGE_ENV: Record<string, string> = {
  PATH: `${VENV_DIR}/bin:${SYSTEM_PATH}`,
  VIRTUAL_ENV: VENV_DIR,
  HOME: HOME_DIR,
  LANG: 'C.UTF-8',
  PIP_NO_INDEX: '1',
  PIP_FIND_LINKS: `${WHEELHOUSE_DIR} ${SYSTEM_WHEELS_DIR}`,
  PIP_DISABLE_PIP_VERSION_CHECK: '1',
  PIP_NO_INPUT: '1',
  PERFMINE_SCRATCH: SCRATCH_DIR,
};

export function envList(env: Record<string, string>): string[] {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

/** Changes the version whenever the layout above changes: it is part of every layer's tag, so old images are not reused. */
export const LAYOUT_VERSION = 'l1';
