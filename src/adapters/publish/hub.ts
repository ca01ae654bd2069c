/**
 * The Hugging Face dataset repository target, through @huggingface/hub
 * (PERFMINE_HF_HUB_URL, PERFMINE_HF_REPO, PERFMINE_HF_TOKEN): the repository
 * is created when it does not exist, then every change is one commit
 * (preupload, LFS uploads of the binary files, the ndjson commit), so the
 * hub shows all of a publication or none of it. Plain LFS, never Xet
 * (useXet: false). The token goes only into the Authorization header.
 */
import { commit, createRepo, repoExists } from '@huggingface/hub';
import { hubFailure } from './failures.js';
import type { DatasetChange, DatasetTarget, TargetReceipt } from './target.js';

export interface HubTargetOptions {
  hubUrl: string;
  /** NAMESPACE/NAME of the dataset repository. */
  repo: string;
  token: string;
  branch?: string;
  /** Each call (existence check, creation, commit) gives up after this long. */
  timeoutMs: number;
}

export class HubDatasetTarget implements DatasetTarget {
  readonly name = 'hub';
  readonly location: string;
  private readonly hubUrl: string;
  private exists = false;

  constructor(private readonly o: HubTargetOptions) {
    this.hubUrl = o.hubUrl.replace(/\/+$/, '');
    this.location = `${this.hubUrl}/datasets/${o.repo}`;
  }

  async write(change: DatasetChange, signal: AbortSignal): Promise<TargetReceipt> {
    const repo = { type: 'dataset' as const, name: this.o.repo };
    await this.call('the hub (repository)', signal, async (s) => {
      if (this.exists) return;
      // repoExists has no signal of its own: its fetch gets ours.
      const there = await repoExists({ repo, hubUrl: this.hubUrl, accessToken: this.o.token, fetch: (u, init) => fetch(u, { ...init, signal: s }) });
      if (!there) {
        await createRepo({ repo, hubUrl: this.hubUrl, accessToken: this.o.token, fetch: (u, init) => fetch(u, { ...init, signal: s }) })
          .catch((err: { statusCode?: number }) => { if (err.statusCode !== 409) throw err; }); // made meanwhile by another daemon
      }
      this.exists = true;
    });
    const out = await this.call('the hub (commit)', signal, (s) => commit({
      repo, hubUrl: this.hubUrl, accessToken: this.o.token, branch: this.o.branch ?? 'main', title: change.summary,
      useXet: false, abortSignal: s,
      operations: [
        ...change.files.map((f) => ({ operation: 'addOrUpdate' as const, path: f.path, content: new Blob([f.bytes]) })),
        ...change.deletes.map((p) => ({ operation: 'delete' as const, path: p })),
      ],
    }));
    return { target: this.name, location: this.location, revision: out?.commit.oid ?? null };
  }

  /** Runs one client call under the attempt's signal and our time limit; classifies its failure. */
  private async call<T>(where: string, signal: AbortSignal, fn: (s: AbortSignal) => Promise<T>): Promise<T> {
    const timeout = AbortSignal.timeout(this.o.timeoutMs);
    const s = AbortSignal.any([signal, timeout]);
    try {
      return await fn(s);
    } catch (err) {
      if (signal.aborted) throw err;
      if ((err as { statusCode?: number }).statusCode === 404) this.exists = false; // deleted meanwhile: look again next time
      throw hubFailure(err, { timedOut: timeout.aborted, timeoutS: Math.round(this.o.timeoutMs / 1000), where });
    }
  }
}
