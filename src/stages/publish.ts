import { ServiceDownError, type HandlerContext, type StageDefinition, type StageResult, type SubjectRow } from '../bus/stage.js';
import type { Logger } from '../log.js';
import { configuredSecrets } from '../adapters/executors/verification/verify.js';
import {
  createDatasetTargets, createImageRegistry, HUB_GROUP, ImageGoneError, imageRepositoryAndTag, REGISTRY_GROUP,
  type DatasetChange, type DatasetTarget, type ImageRegistry, type PushedImage, type TargetReceipt,
} from '../adapters/publish/index.js';
import { environmentFiles, environmentLock } from '../domain/environment-lock.js';
import { judgePublication, secretsFoundIn } from '../domain/publish-gate.js';
import { encodeMonthFile } from '../domain/publish-parquet.js';
import { buildRecord, environmentDir, monthFilePath, monthOf, monthRows, orderRows, taskId, type PublishedRecord } from '../domain/publish-record.js';
import {
  loadBuildInputs, loadPassingBenchmarks, loadPrFacts, loadRun, publishedRecordsOfMonth, savePublishedTask, withAdvisoryLock,
} from '../store/publish.js';
import { PERFMINE_VERSION } from '../version.js';
import type { StageDeps } from './deps.js';

export const PUBLISH_STAGE = 'publish';

/**
 * Stage 8, publish (fail-closed): a PR that stage 7 decided `faster` is
 * published only when its run's evidence holds up (src/domain/publish-gate.ts:
 * a successful run that passed the PR-level gate with a lower bound of at
 * least PERFMINE_MIN_SPEEDUP, on a machine PERFMINE_PUBLISH_MACHINES allows,
 * in the environment the PR still names); otherwise publish_decided_at is set
 * with the reason and the PR stops.
 *
 * Publishing: the docker executor's verified image is pushed to the registry
 * (exactly environment_digest); the month file of the merge date is rebuilt
 * from every row published in that month plus this one, and written with the
 * environment's Dockerfile and lock to every dataset target (remote ones
 * first, the local directory last). published_at is set only after every
 * target took it. A failed target leaves the PR unpublished and retried
 * (ServiceDownError when the service is down), and the targets already
 * written get the month file back as it was. Publications of one dataset are
 * serialized (an advisory lock), so concurrent ones never drop each other's rows.
 */
export function publish(deps: StageDeps): StageDefinition {
  const { config } = deps;
  const dataset = config.PERFMINE_PUBLISH_DATASET;
  const targets = createDatasetTargets(config);
  let registry: ImageRegistry | null | undefined;
  const secrets = configuredSecrets(config);
  const gate = { minSpeedup: config.PERFMINE_MIN_SPEEDUP, machines: config.PERFMINE_PUBLISH_MACHINES };

  return {
    name: PUBLISH_STAGE, ordinal: 8, subjectTable: 'pull_requests',
    description: 'publishes a PR whose run passed the PR-level gate on an allowed machine: its row in the month\'s Parquet file and its environment, on every target',
    pending: "s.benchmark_decision = 'faster' AND s.publish_decided_at IS NULL",
    done: 's.publish_decided_at IS NOT NULL',
    since: 'coalesce(s.benchmarked_at, s.created_at)',
    wakeOn: ['pull_requests.benchmark_decision'],
    writes: ['published_at', 'publish_reason', 'publish_decided_at', 'updated_at'],
    outputs: ['publish_decided_at'],
    concurrency: config.PERFMINE_PUBLISH_CONCURRENCY,
    leaseSeconds: 300,
    // The image push and each target's write have PERFMINE_PUBLISH_TIMEOUT_S each.
    deadlineSeconds: config.PERFMINE_PUBLISH_TIMEOUT_S * (targets.length + 2) + 300,
    maxAttempts: 5, backoff: { baseMs: 30_000, maxMs: 1_800_000 },
    rateLimitGroups: [HUB_GROUP, REGISTRY_GROUP],

    async handle(row: SubjectRow, ctx: HandlerContext): Promise<StageResult> {
      const { signal } = ctx;
      const decided = (reason: string): StageResult => {
        const at = new Date().toISOString();
        ctx.log.info({ pr: row.id, reason }, 'publish: not published');
        return { set: { publish_decided_at: at, publish_reason: reason, updated_at: at } };
      };

      const pr = await loadPrFacts(ctx.db, row.id);
      if (!pr) throw new Error(`pull request ${row.id} is gone`);
      const run = pr.benchmarkRunId === null ? null : await loadRun(ctx.db, pr.benchmarkRunId);
      const passing = run ? await loadPassingBenchmarks(ctx.db, run.id) : [];
      const verdict = judgePublication(pr, run, passing, gate);
      if (!verdict.ok) return decided(verdict.reason);
      const built = await loadBuildInputs(ctx.db, { id: pr.id, packageId: pr.packageId, environmentDigest: pr.environmentDigest! });
      if (!built.python || built.buildScript === null) {
        return decided(`not published: no record of what the verified environment ${pr.environmentDigest} was built from (stage 4's package, stage 6's verified attempt)`);
      }
      if (pr.executor === 'docker') {
        registry ??= createImageRegistry(config);
        if (!registry) throw new ServiceDownError(REGISTRY_GROUP, 'PERFMINE_PUBLISH_REGISTRY is not set: a docker environment\'s verified image has nowhere to be pushed');
      }

      const task = taskId(pr.owner, pr.repo, pr.number);
      const publishedAt = new Date();
      const make = (image: PushedImage | null): PublishedRecord => {
        const lock = environmentLock({
          taskId: task, owner: pr.owner, repo: pr.repo, baseCommit: pr.baseSha!, python: built.python!, requirements: built.requirements,
          buildScript: built.buildScript!, executor: pr.executor!, environmentDigest: pr.environmentDigest!,
          image: image ? `${image.name}@${image.digest}` : null,
        });
        return buildRecord({
          pr, repository: { owner: pr.owner, name: pr.repo }, run: run!, passing, lock, image, version: PERFMINE_VERSION, publishedAt,
        });
      };
      // Nothing leaves perfmine holding one of its own credentials.
      const draft = make(null);
      const leaks = secretsFoundIn([JSON.stringify(draft), ...environmentFiles(draft.environment_lock, draft.environment_path).map((f) => f.text)], secrets);
      if (leaks.length) return decided(`not published: the record would carry ${leaks.length} of perfmine's configured secrets; nothing was written`);

      return withAdvisoryLock(ctx.db, `perfmine:publish:${dataset}`, signal, async () => {
        let image: PushedImage | null = null;
        if (pr.executor === 'docker') {
          const { repository, tag } = imageRepositoryAndTag(pr.owner, pr.repo, pr.number);
          const t0 = performance.now();
          try {
            image = await registry!.push(pr.environmentDigest!, repository, tag, signal);
          } catch (err) {
            if (err instanceof ImageGoneError) return decided(`not published: ${err.message}; build and measure it again (README: re-publish)`);
            throw err;
          }
          ctx.addCost({ images_pushed: 1, push_seconds: Math.round((performance.now() - t0) / 100) / 10 });
        }
        const record = make(image);
        const month = monthOf(record.merged_at);
        const monthPath = monthFilePath(dataset, month);
        const earlier = await publishedRecordsOfMonth(ctx.db, dataset, month, pr.id);
        const rows = monthRows(earlier, record);
        const meta = { dataset, month, version: PERFMINE_VERSION };
        const bytes = encodeMonthFile(rows, meta);
        const change: DatasetChange = {
          files: [
            ...environmentFiles(record.environment_lock, environmentDir(task)).map((f) => ({ path: f.path, bytes: Buffer.from(f.text) })),
            { path: monthPath, bytes },
          ],
          deletes: [],
          summary: `perfmine: publish ${task} (${monthPath}, ${rows.length} row${rows.length === 1 ? '' : 's'})`,
        };
        // What a target that took the change gets back when a later one fails: the month as it was.
        const undo: DatasetChange = earlier.length
          ? { files: [{ path: monthPath, bytes: encodeMonthFile(orderRows(earlier), meta) }], deletes: [], summary: `perfmine: take back ${task} (a later target failed)` }
          : { files: [], deletes: [monthPath], summary: `perfmine: take back ${task} (a later target failed)` };
        const receipts = await writeEverywhere(targets, change, undo, signal, ctx.log);
        ctx.addCost({ published: 1, month_rows: rows.length, parquet_bytes: bytes.length });

        await ctx.checkpoint((trx) => savePublishedTask(trx, {
          dataset, pullRequestId: pr.id, month, record, publishedAt,
          targets: { dataset: receipts, image: image && { name: image.name, digest: image.digest, registry: registry!.location } },
        }));
        const at = new Date().toISOString();
        const where = [image ? `image ${image.name}@${image.digest}` : null, ...receipts.map((r) => `${r.target} ${r.location}${r.revision ? ` @ ${r.revision}` : ''}`)]
          .filter(Boolean).join('; ');
        ctx.log.info({ pr: pr.id, task, file: monthPath, rows: rows.length, targets: receipts.map((r) => r.target) }, 'publish: published');
        return {
          set: {
            published_at: at, publish_decided_at: at, updated_at: at,
            publish_reason: `published ${task} in ${monthPath} (${rows.length} row${rows.length === 1 ? '' : 's'}): ${where}`,
          },
        };
      });
    },
  };
}

/**
 * Writes the change to every target in order. When one fails, those that
 * already took it get `undo` (best effort: a failure there is logged), and
 * the error goes up: the PR stays unpublished and is retried.
 */
async function writeEverywhere(targets: DatasetTarget[], change: DatasetChange, undo: DatasetChange, signal: AbortSignal, log: Logger): Promise<TargetReceipt[]> {
  const receipts: TargetReceipt[] = [];
  const done: DatasetTarget[] = [];
  for (const target of targets) {
    try {
      receipts.push(await target.write(change, signal));
      done.push(target);
    } catch (err) {
      for (const d of done.reverse()) {
        await d.write(undo, signal).catch((e: Error) => log.warn({ target: d.name, location: d.location, error: e.message }, 'publish: could not take the month file back'));
      }
      throw err;
    }
  }
  return receipts;
}
