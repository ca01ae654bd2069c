import { createHash } from 'node:crypto';
import path from 'node:path';
import { sql } from 'kysely';
import { z } from 'zod';
import {
  RateLimitedError, ServiceDownError, type HandlerContext, type StageDefinition, type StageResult, type SubjectRow,
} from '../bus/stage.js';
import type { EnvironmentRef } from '../adapters/executors/executor.js';
import { secretFingerprints, verifyEnvironment, type VerifyResult } from '../adapters/executors/verification/verify.js';
import { RepoUnavailableError, type CommitTree, type RepoRef } from '../adapters/git/repo-store.js';
import { LlmAnswerError, type LlmCall } from '../adapters/llm/client.js';
import { INDEX_GROUP } from '../adapters/python/index.js';
import {
  buildFailureEndsCascade, failedStepOf, failReason, nearestScripts, neighbourWindow, skipDefault,
  type AttemptSummary, type BuildStrategy,
} from '../domain/build-cascade.js';
import { checkScriptForCheats, describeCheat } from '../domain/build-cheats.js';
import { buildLayout, findAsvConfig, isBenchmarkSuitePath } from '../domain/build-layout.js';
import { defaultBuildScript, scriptHash } from '../domain/build-script.js';
import type { Verification } from '../domain/build-verification.js';
import { splitPatch, type SplitPatch } from '../domain/oracle-patch.js';
import { render } from '../domain/prompt-template.js';
import {
  findCachedEnvironment, markUnreusable, prioritizeNeighbours, recentDefaultOutcomes, saveAttempt, verifiedScripts, type AttemptRecord,
} from '../store/candidate-containers.js';
import type { StageDeps } from './deps.js';
import { loadPrompt, PROMPTS_DIR, recordPrompts } from './prompts.js';
import { reportServiceOk } from '../bus/attempt-scope.js';
import { EXECUTOR_GROUP, executorAvailability } from './executor-availability.js';

export const SYNTHESIZE_STAGE = 'synthesize_images';

/** What the LLM answers: a script, checked before it runs. */
const synthesisAnswer = z.object({
  script: z.string().trim().min(1).max(20_000),
  explanation: z.string().optional(),
});

const PROMPT_FILES = 300;
const BUILD_FILES = ['setup.py', 'pyproject.toml', 'setup.cfg', 'meson.build', 'CMakeLists.txt'];

/**
 * Stage 6, synthesize_images: a PR with a pinned environment and a problem
 * statement gets an environment where its repository's benchmarks run at the
 * PR's base commit, built and verified through the executor (local or docker),
 * by a cascade of build scripts (src/domain/build-cascade.ts), one
 * candidate_containers row per attempt. What is verified is what stage 7 runs:
 * the PR keeps the environment's ref (container_name) and digest; nothing is
 * rebuilt after verification.
 */
export function synthesizeImages(deps: StageDeps): StageDefinition {
  const { config, executor } = deps;
  const prompt = loadPrompt('synthesize', config.PERFMINE_PROMPTS_DIR ?? PROMPTS_DIR);
  const secrets = secretFingerprints(config);
  const buildTimeoutMs = config.PERFMINE_BUILD_TIMEOUT_S * 1000;
  const verifyTimeoutMs = config.PERFMINE_VERIFY_TIMEOUT_S * 1000;
  const tailChars = config.PERFMINE_BUILD_LOG_TAIL_CHARS;
  /**
   * Repositories whose LLM phase is under way in this daemon: a PR of the
   * same repository that also needs the LLM waits, then tries what it found
   * (SIMILAR) before asking the LLM itself.
   */
  const llmPhases = new Map<number, Promise<void>>();
  const ensureAvailable = executorAvailability(executor, 'build');

  return {
    name: SYNTHESIZE_STAGE, ordinal: 6, subjectTable: 'pull_requests',
    description: 'a verified environment at the base commit: cached, similar PRs\' scripts, the default template, then the LLM',
    pending: 's.rendered_problem IS NOT NULL AND s.env_built_at IS NULL',
    done: 's.env_built_at IS NOT NULL',
    // Neighbours of a fresh success first (they most likely build with its script), then in order.
    order: 's.build_priority DESC NULLS LAST, s.id',
    since: 'coalesce(s.problem_rendered_at, s.created_at)',
    wakeOn: ['pull_requests.rendered_problem'],
    writes: ['container_name', 'environment_digest', 'executor', 'build_reason', 'env_built_at', 'updated_at'],
    outputs: ['env_built_at'],
    concurrency: config.PERFMINE_BUILD_CONCURRENCY,
    leaseSeconds: 300,
    deadlineSeconds: config.PERFMINE_BUILD_DEADLINE_S,
    resources: [{ name: 'cpu', mode: 'shared' }],
    maxAttempts: 3, backoff: { baseMs: 60_000, maxMs: 3_600_000 },
    // The LLM is not among them: most builds never need it, and a PR that does waits on its own (RateLimitedError).
    rateLimitGroups: [INDEX_GROUP, EXECUTOR_GROUP],

    async prepare(db) {
      await recordPrompts(db, [{ name: 'synthesize', hash: prompt.hash, template: prompt.text }]);
      executor.useDatabase?.(db);
      const ok = await executor.available().catch((err: Error) => ({ ok: false as const, reason: err.message }));
      if (!ok.ok) deps.log.warn({ executor: executor.kind, reason: ok.reason }, 'synthesize_images: the executor cannot build here');
    },

    async handle(pr: SubjectRow, ctx: HandlerContext): Promise<StageResult> {
      const { signal } = ctx;
      await ensureAvailable(signal);
      const repoRow = await ctx.db.selectFrom('repositories')
        .select(['id', 'owner', 'name', 'source', 'git_path', 'clone_url', 'asv_config_path'])
        .where('id', '=', pr.repository_id).executeTakeFirstOrThrow();
      const repo: RepoRef = {
        id: Number(repoRow.id), owner: repoRow.owner, name: repoRow.name, source: repoRow.source,
        gitPath: repoRow.git_path, cloneUrl: repoRow.clone_url,
      };
      const finish = (env: EnvironmentRef | null, reason: string | null): StageResult => {
        const at = new Date().toISOString();
        return {
          set: {
            container_name: env?.ref ?? null, environment_digest: env?.digest ?? null, executor: executor.kind,
            build_reason: env ? null : reason, env_built_at: at, updated_at: at,
          },
        };
      };

      // What to build: stage 4's package, the base commit, its suite and the oracle's patch.
      const pkg = pr.package_id === null || pr.package_id === undefined ? undefined : (await sql<{
        python_version: string | null; env_payload: string[] | null; can_install: boolean | null;
      }>`SELECT python_version, env_payload, can_install FROM packages WHERE id = ${pr.package_id}`.execute(ctx.db)).rows[0];
      if (!pkg?.can_install || !pkg.python_version) return finish(null, 'no installable environment from stage 4 (the packages row is missing or cannot be installed)');
      const base: string | null = pr.base_sha;
      if (!base || !/^[0-9a-f]{7,64}$/i.test(base)) return finish(null, 'the PR has no base commit to build at');
      if (pr.patch === null || pr.patch === undefined) return finish(null, 'the PR has no patch (stage 3 stores it): nothing for the oracle to apply');
      let tree: CommitTree | null;
      try {
        tree = await deps.repos.commit(repo, base, signal);
      } catch (err) {
        if (err instanceof RepoUnavailableError) return finish(null, `the repository could not be fetched: ${err.message}`);
        throw err;
      }
      if (!tree) return finish(null, `the repository has no base commit ${base}`);
      const read = (file: string) => tree!.read(file, { maxBytes: 1024 * 1024, signal }).catch(() => null);
      const configPath = findAsvConfig(tree.files, repoRow.asv_config_path);
      const configText = configPath ? await read(configPath) : null;
      const layout = buildLayout(tree.files, repoRow.asv_config_path, () => configText);
      if (!layout.benchmarkDir) return finish(null, `no benchmark suite at the base commit: ${layout.problem}`);
      const split = splitPatch(pr.patch, (p) => isBenchmarkSuitePath(layout, p));
      if (!split.kept) return finish(null, 'the patch changes only the benchmark suite or the asv config: nothing for the oracle to apply');
      const at = (f: string) => (layout.repoSubdir ? path.posix.join(layout.repoSubdir, f) : f);
      const buildFiles = Object.fromEntries(await Promise.all(BUILD_FILES.map(async (f) => [f, await read(at(f))] as const)));
      const defaultScript = defaultBuildScript({ repoSubdir: layout.repoSubdir, setupPy: buildFiles['setup.py'], pyproject: buildFiles['pyproject.toml'] });

      const python = pkg.python_version;
      const pins = pkg.env_payload ?? [];
      const indexUrl = config.PERFMINE_PYTHON_INDEX_URL;
      const envKey = createHash('sha256').update(JSON.stringify({ python, pins: [...pins].sort(), indexUrl })).digest('hex').slice(0, 20);
      const mergedAt: Date | null = pr.merged_at ? new Date(pr.merged_at) : null;

      const attempts: AttemptSummary[] = [];
      const notes: string[] = [];
      const tried = new Set<string>();
      let previous: { script: string; reason: string; logTail: string } | null = null;
      const common = {
        pullRequestId: pr.id, repositoryId: repo.id, commitSha: base, executor: executor.kind, pythonVersion: python, envKey,
      };
      const record = async (r: Omit<AttemptRecord, keyof typeof common | 'attemptNo'>) => {
        attempts.push({ strategy: r.strategy, outcome: r.outcome, reason: r.reason });
        await ctx.checkpoint((trx) => saveAttempt(trx, { ...common, attemptNo: attempts.length, ...r }));
      };
      const blank = {
        sourcePullRequestId: null, llmPromptTokens: null, llmCompletionTokens: null, promptHash: null, model: null,
        verification: null, envRef: null, envDigest: null, environment: null, imageName: null, reusable: false,
      };
      const verify = (env: EnvironmentRef) => verifyEnvironment(executor, {
        env, baseSha: base, layout, patch: split, secrets, timeoutMs: verifyTimeoutMs, signal,
      });

      type Tried = { ok: true; env: EnvironmentRef } | { ok: false; ends: string | null };
      /** Builds and verifies one script; records the attempt. */
      const attempt = async (strategy: BuildStrategy, script: string, extra: Partial<AttemptRecord> = {}): Promise<Tried> => {
        const hash = scriptHash(script);
        tried.add(hash);
        const build = await executor.build({
          key: `pr${pr.id}-${strategy}-${base.slice(0, 12)}-${hash.slice(0, 8)}`, repo, commit: base, python, requirements: pins,
          indexUrl, script, timeoutMs: buildTimeoutMs,
        }, signal);
        // The executor answered (and, for a build that installed its pins, the index did): their breakers, if open, close.
        reportServiceOk(EXECUTOR_GROUP);
        if (build.ok && pins.length) reportServiceOk(INDEX_GROUP);
        ctx.addCost({ builds: 1, build_seconds: Math.round(build.durationMs / 100) / 10 });
        const logTail = build.logTail.slice(-tailChars);
        if (!build.ok || !build.env) {
          const step = failedStepOf(build.reason, build.failedStep);
          const reason = build.reason ?? 'the build failed';
          await record({ ...blank, ...extra, strategy, script, scriptHash: hash, outcome: 'build_failed', reason, logTail, durationMs: build.durationMs });
          previous = { script, reason, logTail };
          return { ok: false, ends: buildFailureEndsCascade(step) ? reason : null };
        }
        const env = build.env;
        let checked: VerifyResult;
        try {
          checked = await verify(env);
        } catch (err) {
          await executor.discard(env).catch(() => undefined);
          throw err;
        }
        const v = checked.verification;
        ctx.addCost({ verify_seconds: Math.round(checked.durationMs / 100) / 10 });
        const durationMs = build.durationMs + checked.durationMs;
        const verification = verificationRecord(checked, split);
        if (!v.ok) {
          await executor.discard(env).catch(() => undefined);
          const reason = `verification failed: ${v.reason}`;
          await record({ ...blank, ...extra, strategy, script, scriptHash: hash, outcome: 'verification_failed', reason, logTail, durationMs, verification });
          previous = { script, reason, logTail: `${logTail}\n\n${reason}`.slice(-tailChars) };
          return { ok: false, ends: v.retryable ? null : reason };
        }
        try {
          await record({
            ...blank, ...extra, strategy, script, scriptHash: hash, outcome: 'verified', reason: null, logTail, durationMs, verification,
            envRef: env.ref, envDigest: env.digest, environment: env, imageName: env.executor === 'docker' ? env.ref.split('@')[0] : null, reusable: true,
          });
        } catch (err) {
          await executor.discard(env).catch(() => undefined); // the lease is gone: nobody will use it
          throw err;
        }
        return { ok: true, env };
      };

      const succeed = async (env: EnvironmentRef): Promise<StageResult> => {
        if (mergedAt) {
          const { from, to } = neighbourWindow(mergedAt, config.PERFMINE_BUILD_NEIGHBOUR_DAYS);
          const moved = await ctx.checkpoint((trx) => prioritizeNeighbours(trx, {
            repositoryId: repo.id, exceptPr: pr.id, mergedAt, from, to, max: config.PERFMINE_BUILD_NEIGHBOUR_MAX,
          }));
          ctx.addCost({ neighbours_prioritized: moved });
        }
        return finish(env, null);
      };
      const fail = (ended: string | null) => finish(null, failReason(attempts, [ended, ...notes].filter(Boolean).join('; ') || null));

      // 1. CHECK_CACHE: a verified environment of this commit (and Python and pins): checked again for this PR's patch, not rebuilt.
      const cached = await findCachedEnvironment(ctx.db, { repositoryId: repo.id, commitSha: base, executor: executor.kind, envKey });
      if (cached) {
        const env = cached.environment as EnvironmentRef;
        let checked: VerifyResult | null = null;
        try {
          checked = await verify(env);
        } catch (err) {
          if (signal.aborted) throw err;
          notes.push(`the cached environment ${env.ref} is gone (${(err as Error).message.slice(0, 200)})`);
          await ctx.checkpoint((trx) => markUnreusable(trx, env.ref));
        }
        if (checked) {
          const v = checked.verification;
          const verification = verificationRecord(checked, split);
          ctx.addCost({ cache_hits: v.ok ? 1 : 0, verify_seconds: Math.round(checked.durationMs / 100) / 10 });
          await record({
            ...blank, strategy: 'cache', script: cached.script, scriptHash: cached.script ? scriptHash(cached.script) : null,
            sourcePullRequestId: cached.pullRequestId, outcome: v.ok ? 'verified' : 'verification_failed',
            reason: v.ok ? null : `verification failed: ${v.reason}`, logTail: null, durationMs: checked.durationMs, verification,
            envRef: env.ref, envDigest: env.digest, environment: env, imageName: cached.imageName,
          });
          if (v.ok) return succeed(env);
          if (!v.checks.drift.ok) await ctx.checkpoint((trx) => markUnreusable(trx, env.ref));
          if (!v.retryable) return fail(`verification failed: ${v.reason}`);
          if (cached.script) tried.add(scriptHash(cached.script));
        }
      }

      // 2. SIMILAR: the verified scripts of the nearest PRs of the repository.
      const trySimilar = async (): Promise<Tried | null> => {
        const scripts = nearestScripts(mergedAt, await verifiedScripts(ctx.db, repo.id, mergedAt, pr.id), config.PERFMINE_BUILD_SIMILAR, tried);
        for (const s of scripts) {
          const r = await attempt('similar', s.script, { sourcePullRequestId: s.pullRequestId });
          if (r.ok || r.ends) return r;
        }
        return null;
      };
      const similar = await trySimilar();
      if (similar?.ok) return succeed(similar.env);
      if (similar && !similar.ok && similar.ends) return fail(similar.ends);

      // 3. DEFAULT: the template, unless the repository's recent default builds all failed.
      const maxDefaultFailures = config.PERFMINE_BUILD_DEFAULT_MAX_FAILURES;
      if (tried.has(scriptHash(defaultScript))) {
        // Already tried as a neighbour's script.
      } else if (skipDefault(await recentDefaultOutcomes(ctx.db, repo.id, maxDefaultFailures), maxDefaultFailures)) {
        notes.push(`default skipped: the repository's last ${maxDefaultFailures} default builds failed`);
      } else {
        const r = await attempt('default', defaultScript);
        if (r.ok) return succeed(r.env);
        if (r.ends) return fail(r.ends);
      }

      // 4. LLM: one repository's LLM phase at a time in this daemon; a PR that waited tries what the other found first.
      if (config.PERFMINE_BUILD_LLM_ATTEMPTS > 0) {
        while (llmPhases.has(repo.id)) {
          await llmPhases.get(repo.id);
          const found = await trySimilar();
          if (found?.ok) return succeed(found.env);
          if (found && !found.ok && found.ends) return fail(found.ends);
        }
        let done!: () => void;
        llmPhases.set(repo.id, new Promise<void>((resolve) => { done = resolve; }));
        try {
          const files = [...tree.files].sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b));
          for (let i = 0; i < config.PERFMINE_BUILD_LLM_ATTEMPTS; i++) {
            const last = previous as { script: string; reason: string; logTail: string } | null;
            const messages = render(prompt, {
              repo: `${repo.owner}/${repo.name}`, title: pr.title ?? '', python, commit: base,
              requirements: pins.length ? pins.map((p) => `- ${p.split(' ')[0]}`).join('\n') : '(none)',
              file_limit: String(PROMPT_FILES),
              files: files.slice(0, PROMPT_FILES).map((f) => `- ${f}`).join('\n') + (files.length > PROMPT_FILES ? `\n- ... and ${files.length - PROMPT_FILES} more` : ''),
              build_files: Object.entries(buildFiles).filter(([, t]) => t !== null)
                .map(([f, t]) => `${at(f)}:\n\`\`\`\n${t!.slice(0, 3000)}${t!.length > 3000 ? '\n...' : ''}\n\`\`\``).join('\n\n') || '(none)',
              previous_script: (last?.script ?? defaultScript).trim(),
              previous_reason: last?.reason ?? 'not tried yet (this is the default template)',
              log_tail: last?.logTail.trim() || '(no log)',
              benchmark_dir: layout.benchmarkDir, asv_config: layout.asvConfigPath ?? 'asv.conf.json',
            });
            const calls: LlmCall[] = [];
            const onCall = (call: LlmCall) => {
              calls.push(call);
              ctx.addCost({ llm_calls: 1, llm_prompt_tokens: call.prompt_tokens, llm_completion_tokens: call.completion_tokens, llm: [call] });
            };
            const llm = () => ({
              llmPromptTokens: calls.reduce((n, c) => n + c.prompt_tokens, 0), llmCompletionTokens: calls.reduce((n, c) => n + c.completion_tokens, 0),
              promptHash: prompt.hash, model: deps.llm.model('synthesize'),
            });
            const t0 = performance.now();
            let script: string;
            try {
              script = `${(await deps.llm.json('synthesize', messages, synthesisAnswer, onCall, signal)).script.trim()}\n`;
            } catch (err) {
              if (err instanceof LlmAnswerError) {
                await record({ ...blank, ...llm(), strategy: 'llm', script: null, scriptHash: null, outcome: 'llm_failed', reason: err.message, logTail: null, durationMs: Math.round(performance.now() - t0) });
                continue;
              }
              // The LLM is down: this PR waits (it is not the row's fault); builds that need no LLM go on.
              if (err instanceof ServiceDownError) throw new RateLimitedError(new Date(Date.now() + Math.max(60, config.PERFMINE_BREAKER_BASE_S) * 1000), err.message, 'llm');
              throw err;
            }
            const hash = scriptHash(script);
            if (tried.has(hash)) {
              await record({ ...blank, ...llm(), strategy: 'llm', script, scriptHash: hash, outcome: 'duplicate', reason: 'the same script as an earlier attempt: not built again', logTail: null, durationMs: Math.round(performance.now() - t0) });
              continue;
            }
            const cheats = checkScriptForCheats(script, layout);
            if (cheats.length) {
              const reason = describeCheat(cheats);
              await record({ ...blank, ...llm(), strategy: 'llm', script, scriptHash: hash, outcome: 'cheat', reason, logTail: null, durationMs: Math.round(performance.now() - t0), verification: { cheats } });
              ctx.addCost({ cheats: 1 });
              return fail(`the LLM's script was refused before it ran: ${reason}`);
            }
            const r = await attempt('llm', script, llm());
            if (r.ok) return succeed(r.env);
            if (r.ends) return fail(r.ends);
          }
        } finally {
          llmPhases.delete(repo.id);
          done();
        }
      }
      return fail(null);
    },
  };
}

/** What candidate_containers.verification keeps: every check's verdict and the facts behind it (the tree's status as a count). */
function verificationRecord(checked: VerifyResult, split: SplitPatch): Record<string, unknown> {
  const v: Verification = checked.verification;
  const f = checked.facts;
  return {
    ok: v.ok, reason: v.reason, retryable: v.retryable, checks: v.checks, imported: v.imported, seconds: checked.durationMs / 1000,
    patch: { kept_files: split.keptFiles, set_aside: split.setAside, applies: f?.patch?.ok ?? null },
    facts: f && {
      python: f.python, head: f.git.head, untracked_or_ignored: f.git.status.filter((e) => e.code === '??' || e.code === '!!').length,
      imports: f.imports, benchmarks: f.benchmarks, tests: f.tests,
      secrets: { files: f.secrets.files, env: f.secrets.env, scanned_files: f.secrets.scanned_files, scanned_bytes: f.secrets.scanned_bytes },
      errors: f.errors, probe_seconds: f.seconds,
    },
  };
}
