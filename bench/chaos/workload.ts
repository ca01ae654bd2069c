import { GitHubStandin, loadPRsFromJsonl, type StandinPR } from '../../src/standins/github/server.js';
import { LlmStandin } from '../../src/standins/llm/server.js';
import type { ChaosSettings } from './settings.js';

const DATA = 'data/xarray-prs.jsonl';

export interface ChaosRepo {
  owner: string;
  name: string;
  prs: StandinPR[];
  released: boolean;
}

/**
 * The stand-ins and what they serve: xarray's real merged PRs, split into
 * `repos` repositories (consecutive stretches of its history). A repository
 * becomes findable by code search only when released, so discovery, scraping
 * and judging arrive during the fault phase instead of all at the start.
 */
export class Workload {
  readonly repos: ChaosRepo[];

  private constructor(readonly github: GitHubStandin, readonly llm: LlmStandin, prs: StandinPR[], count: number) {
    const per = Math.ceil(prs.length / count);
    this.repos = Array.from({ length: count }, (_, i) => {
      const owner = `chaos${i + 1}`;
      const slice = prs.slice(i * per, (i + 1) * per).map((pr) => ({ ...pr, repository: `${owner}/xarray` }));
      return { owner, name: 'xarray', prs: slice, released: false };
    });
    for (const r of this.repos) github.addPRs(r.prs);
  }

  static async start(s: ChaosSettings): Promise<Workload> {
    const prs = loadPRsFromJsonl(DATA).slice(0, s.prs);
    const github = await GitHubStandin.start({ latencyMs: s.githubLatencyMs });
    const llm = await LlmStandin.start({ latencyMs: s.llmLatencyMs });
    const w = new Workload(github, llm, prs, s.repos);
    if (s.corruptFraction > 0) github.corrupt({ fraction: s.corruptFraction });
    return w;
  }

  /** Gives repository `i` its asv config, so the next code search finds it. */
  release(i: number): ChaosRepo {
    const r = this.repos[i];
    this.github.addRepo({
      owner: r.owner, name: r.name, stars: 4000, description: 'xarray history served by the chaos benchmark',
      files: { 'asv_bench/asv.conf.json': '{"benchmark_dir": "benchmarks"}' },
    });
    r.released = true;
    return r;
  }

  /** Every PR the stand-in serves for a released repository: what pull_requests must hold at the end. */
  expected(): Array<{ owner: string; name: string; number: number }> {
    return this.repos.filter((r) => r.released).flatMap((r) => r.prs.map((p) => ({ owner: r.owner, name: r.name, number: p.number })));
  }

  /** Faults off: queued faults dropped, held requests ended, an outage over. Corrupt text stays: it is the data. */
  async faultsOff(): Promise<void> {
    this.github.clearFaults();
    this.llm.clearFaults();
    await this.llm.endOutage();
  }

  async close(): Promise<void> {
    await Promise.all([this.github.close(), this.llm.close()]);
  }
}
