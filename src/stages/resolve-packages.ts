import { PermanentError, type HandlerContext, type StageDefinition, type SubjectRow } from '../bus/stage.js';
import { RepoUnavailableError, type RepoRef } from '../adapters/git/repo-store.js';
import { readDeclared } from '../adapters/python/declared-reader.js';
import { INDEX_GROUP, type Pin, type PythonResolver } from '../adapters/python/index.js';
import { BASE_TOOLING, canonicalName, sortRequirements, type DroppedRequirement } from '../domain/python-requirements.js';
import { choosePython } from '../domain/python-version.js';
import { cutoffOf, familyKey, memoKey } from '../domain/resolution-memo.js';
import {
  countResolutionHit, findResolution, findResolutionAt, recordResolverInUse, saveResolution, upsertPackage, type PackageRow, type Resolution,
} from '../store/packages.js';
import type { StageDeps } from './deps.js';

export const RESOLVE_STAGE = 'resolve_packages';

/**
 * Stage 4, resolve_packages: every PR judged a performance change gets the
 * Python environment of its merge commit, pinned as of the commit's day.
 * One `packages` row per (repository, merge commit), shared by the PRs of
 * that commit. Nothing of the repository is run: packaging files are parsed
 * (setup.py with Python's ast). Commits with the same requirements, Python
 * version and cutoff day share one resolution (the memo), and so do commits
 * of other days when no file the resolver read was uploaded in between. Bad input is a
 * recorded outcome (can_install = false and the reason), never a crash; an
 * index that is down pauses the stage (ServiceDownError) instead of failing rows.
 */
export function resolvePackages(deps: StageDeps): StageDefinition {
  const { config } = deps;
  const resolveTimeoutS = config.PERFMINE_RESOLVE_TIMEOUT_S;
  /** Resolutions under way in this process, by family key: a commit of the same family waits for it instead of resolving again. */
  const inFlight = new Map<string, Promise<Resolution>>();

  return {
    name: RESOLVE_STAGE, ordinal: 4, subjectTable: 'pull_requests',
    description: 'declared requirements at the merge commit, Python version, pinned environment as of the commit date',
    pending: 's.is_performance_commit AND s.env_resolved_at IS NULL',
    done: 's.env_resolved_at IS NOT NULL',
    since: 'coalesce(s.judged_at, s.created_at)',
    wakeOn: ['pull_requests.is_performance_commit'],
    writes: ['package_id', 'can_install', 'env_resolved_at', 'updated_at'],
    outputs: ['env_resolved_at'],
    concurrency: config.PERFMINE_RESOLVE_CONCURRENCY,
    leaseSeconds: 120,
    // A fetch of the repository, then up to two resolutions (at the cutoff, then without it).
    deadlineSeconds: config.PERFMINE_GIT_FETCH_TIMEOUT_S + 2 * resolveTimeoutS + 120,
    maxAttempts: 5, backoff: { baseMs: 30_000, maxMs: 3_600_000 },
    rateLimitGroups: [INDEX_GROUP],

    async prepare(db) {
      try {
        const resolver = await deps.pythonResolver();
        await recordResolverInUse(db, RESOLVE_STAGE, resolver.name, await resolver.version(), resolver.indexUrl);
      } catch (err) {
        // A resolver that cannot start fails each attempt with the reason; the daemon itself starts.
        deps.log.warn({ err: (err as Error).message }, 'resolve_packages: the Python resolver is not usable');
      }
    },

    async handle(pr: SubjectRow, ctx: HandlerContext) {
      const repoRow = await ctx.db.selectFrom('repositories')
        .select(['id', 'owner', 'name', 'source', 'git_path', 'clone_url', 'asv_config_path'])
        .where('id', '=', pr.repository_id).executeTakeFirstOrThrow();
      const sha: string | null = pr.merge_commit_sha;
      if (!sha) throw new PermanentError('the PR has no merge commit: there is no tree to resolve');
      const repo: RepoRef = {
        id: Number(repoRow.id), owner: repoRow.owner, name: repoRow.name, source: repoRow.source,
        gitPath: repoRow.git_path, cloneUrl: repoRow.clone_url,
      };
      const resolver = await deps.pythonResolver();
      const resolverVersion = await resolver.version(ctx.signal);
      const base: PackageRow = {
        repositoryId: repo.id, mergeCommitSha: sha, pythonVersion: null, pythonVersionRung: null, envPayload: null,
        canInstall: false, installReason: null, resolvedWithoutCutoff: false, resolver: resolver.name, resolverVersion,
        indexUrl: resolver.indexUrl, cutoffUsed: null, cutoffAt: null, cutoffNote: null, committedAt: null, packagingRoot: null,
        packagingRootRule: null, declaredRequirements: null, droppedRequirements: null, memoKey: null, memoHit: null,
      };
      const finish = async (row: PackageRow) => {
        const packageId = await ctx.checkpoint((trx) => upsertPackage(trx, row));
        const now = new Date().toISOString();
        return { set: { package_id: packageId, can_install: row.canInstall, env_resolved_at: now, updated_at: now } };
      };

      if (!/^[0-9a-f]{7,64}$/i.test(sha)) return finish({ ...base, installReason: `the merge commit ${JSON.stringify(sha.slice(0, 80))} is not a commit sha` });
      let tree;
      try {
        tree = await deps.repos.commit(repo, sha, ctx.signal);
      } catch (err) {
        // Recorded, not retried for hours: a re-run is one UPDATE (README) once the remote answers again.
        if (err instanceof RepoUnavailableError) return finish({ ...base, installReason: `the repository could not be fetched: ${err.message}` });
        throw err;
      }
      if (!tree) return finish({ ...base, installReason: `the repository has no commit ${sha} (not on any branch the clone fetched)` });
      const committedAt = pr.merged_at ? new Date(pr.merged_at) : tree.committedAt;
      const declared = await readDeclared(tree, {
        repoName: repo.name, asvConfigPath: repoRow.asv_config_path, python: config.PERFMINE_RESOLVER_PYTHON, signal: ctx.signal,
      });
      const located = { ...base, committedAt, packagingRoot: declared.root?.dir ?? null, packagingRootRule: declared.root?.rule ?? null };
      if (!declared.ok) return finish({ ...located, installReason: declared.reason });

      const sorted = sortRequirements(declared.requirements, declared.projectName);
      const dropped: DroppedRequirement[] = [...declared.unreadable, ...sorted.dropped];
      const described = { ...located, declaredRequirements: declared.requirements, droppedRequirements: dropped };
      const python = choosePython(
        { requiresPython: declared.requiresPython, classifiers: declared.classifiers, asvPythons: declared.asvPythons },
        committedAt, config.PERFMINE_PYTHON_MIN, config.PERFMINE_PYTHON_MAX,
      );
      if (!python.ok) return finish({ ...described, installReason: python.reason });

      const requirements = sorted.usable.map((r) => r.requirement);
      const cutoff = config.PERFMINE_RESOLVE_CUTOFF ? cutoffOf(committedAt) : null;
      const memoInputs = { requirements, pythonVersion: python.version, indexUrl: resolver.indexUrl, resolver: resolver.name, resolverVersion };
      const family = familyKey(memoInputs);
      let key = memoKey({ ...memoInputs, cutoffDay: cutoff?.day ?? null });
      // The same day's resolution, else one of another day whose window holds this cutoff too.
      const lookup = async () => await findResolution(ctx.db, key) ?? (cutoff ? await findResolutionAt(ctx.db, family, cutoff.at) : null);
      let memoized = await lookup();
      // A resolution of the same family under way here may well cover this commit: wait for it, then look again.
      while (!memoized && inFlight.has(family)) {
        ctx.addCost({ memo_waits: 1 });
        await inFlight.get(family)!.catch(() => undefined);
        memoized = await lookup();
      }
      let resolution: Resolution;
      let hit: boolean;
      if (memoized) {
        resolution = memoized;
        key = memoized.memoKey;
        hit = true;
      } else {
        const mine = resolveAtDate(resolver, requirements, python.version, cutoff?.at ?? null, ctx.signal).then(async (r) => {
          await ctx.checkpoint((trx) => saveResolution(trx, {
            ...r, memoKey: key, familyKey: family, requirements, pythonVersion: python.version, cutoffDay: cutoff?.day ?? null,
            indexUrl: resolver.indexUrl, resolver: resolver.name, resolverVersion,
          }));
          return r;
        });
        inFlight.set(family, mine);
        void mine.then(() => inFlight.delete(family), () => inFlight.delete(family));
        resolution = await mine;
        hit = false;
        ctx.addCost({ resolutions: 1, resolve_seconds: resolution.seconds ?? 0 });
      }
      if (hit) {
        ctx.addCost({ memo_hits: 1 });
        await countResolutionHit(ctx.db, key);
      }
      return finish({
        ...described, pythonVersion: python.version, pythonVersionRung: python.rung,
        envPayload: resolution.envPayload, canInstall: resolution.canInstall, installReason: resolution.installReason,
        resolvedWithoutCutoff: resolution.resolvedWithoutCutoff, cutoffUsed: resolution.cutoffUsed, cutoffAt: cutoff?.at ?? null,
        cutoffNote: resolution.cutoffNote, memoKey: key, memoHit: hit,
      });
    },
  };
}

/**
 * Resolves at the cutoff; when that fails (or the index cannot give a
 * cutoff), once more without it, recording why. A failure without the
 * cutoff too is the input's: can_install false with the resolver's message.
 */
async function resolveAtDate(resolver: PythonResolver, requirements: string[], pythonVersion: string, cutoff: Date | null, signal: AbortSignal): Promise<Resolution> {
  const t0 = performance.now();
  const seconds = () => Math.round(performance.now() - t0) / 1000;
  const first = await resolver.resolve({ requirements, pythonVersion, cutoff, signal });
  const noWindow = { validAfter: null, validUntil: null };
  if (first.ok) {
    return {
      canInstall: true, installReason: null, envPayload: envPayload(first.pins), cutoffUsed: cutoff !== null, cutoffNote: null,
      resolvedWithoutCutoff: false, seconds: seconds(), validAfter: first.window?.after ?? null, validUntil: first.window?.until ?? null,
    };
  }
  if (cutoff === null) {
    return { canInstall: false, installReason: `${resolver.name} could not resolve: ${first.reason}`, envPayload: null, cutoffUsed: false, cutoffNote: null, resolvedWithoutCutoff: false, seconds: seconds(), ...noWindow };
  }
  const cutoffNote = first.kind === 'cutoff-impossible' ? first.reason : `resolution at the cutoff failed: ${first.reason}`;
  const second = await resolver.resolve({ requirements, pythonVersion, cutoff: null, signal });
  if (second.ok) {
    return { canInstall: true, installReason: null, envPayload: envPayload(second.pins), cutoffUsed: false, cutoffNote, resolvedWithoutCutoff: true, seconds: seconds(), ...noWindow };
  }
  return {
    canInstall: false, installReason: `${resolver.name} could not resolve (without the cutoff either): ${second.reason}`,
    envPayload: null, cutoffUsed: false, cutoffNote, resolvedWithoutCutoff: true, seconds: seconds(), ...noWindow,
  };
}

/** Pinned lines, base tooling left out, sorted by name: `name==version --hash=sha256:...` (the hash when the index gave one). */
export function envPayload(pins: readonly Pin[]): string[] {
  return pins
    .filter((p) => !BASE_TOOLING.includes(canonicalName(p.name)))
    .sort((a, b) => canonicalName(a.name).localeCompare(canonicalName(b.name)))
    .map((p) => `${p.name}==${p.version}${p.sha256 ? ` --hash=sha256:${p.sha256}` : ''}`);
}
