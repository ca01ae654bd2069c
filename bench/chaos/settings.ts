/**
 * The chaos benchmark's knobs, from the environment (documented in README's
 * benchmarks section). Defaults keep a run around five minutes on 2 vCPUs.
 */
export interface ChaosSettings {
  /** Length of the fault phase. */
  seconds: number;
  /** After the fault phase: how long to wait for the funnel to go idle. */
  settleSeconds: number;
  prs: number;
  repos: number;
  daemons: number;
  kills: number;
  pgRestarts: number;
  pgDownSeconds: number;
  /** The outage starts here or later: once 100 rows wait for the judge, or when it would no longer fit in the phase. */
  llmOutageAt: number;
  llmOutageSeconds: number;
  /** refuse: the port is closed; http-503: 503 to everything; mixed: refuse for the first half, then 503. */
  llmOutageMode: 'refuse' | 'http-503' | 'mixed';
  githubFaultEverySeconds: number;
  llmFaultEverySeconds: number;
  /** Share of PRs served with NUL, non-UTF-8 or lone-surrogate text. */
  corruptFraction: number;
  /** Longest a `timeout` fault holds a request before it answers or drops it (held-forever ones end with the fault phase). */
  hangSeconds: number;
  githubLatencyMs: number;
  llmLatencyMs: number;
  /** Database connections per daemon (plus one LISTEN connection). */
  pool: number;
  seed: number;
  keepLogs: boolean;
}

function num(name: string, fallback: number, min = 0): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name}=${raw}: expected a number >= ${min}`);
  return n;
}

export function chaosSettings(): ChaosSettings {
  const mode = process.env.BENCH_LLM_OUTAGE_MODE ?? 'mixed';
  if (mode !== 'refuse' && mode !== 'http-503' && mode !== 'mixed') {
    throw new Error(`BENCH_LLM_OUTAGE_MODE=${mode}: expected refuse, http-503 or mixed`);
  }
  const seconds = num('BENCH_SECONDS', 180, 10);
  return {
    seconds,
    settleSeconds: num('BENCH_SETTLE_SECONDS', 150, 1),
    prs: Math.floor(num('BENCH_PRS', 3000, 10)),
    repos: Math.floor(num('BENCH_REPOS', 3, 1)),
    daemons: Math.floor(num('BENCH_DAEMONS', 3, 1)),
    kills: Math.floor(num('BENCH_KILLS', 24)),
    pgRestarts: Math.floor(num('BENCH_PG_RESTARTS', 2)),
    pgDownSeconds: num('BENCH_PG_DOWN_SECONDS', 5),
    llmOutageAt: num('BENCH_LLM_OUTAGE_AT', 20),
    llmOutageSeconds: num('BENCH_LLM_OUTAGE_SECONDS', 120),
    llmOutageMode: mode,
    githubFaultEverySeconds: num('BENCH_GITHUB_FAULT_EVERY_S', 4, 0.1),
    llmFaultEverySeconds: num('BENCH_LLM_FAULT_EVERY_S', 8, 0.1),
    corruptFraction: num('BENCH_CORRUPT_FRACTION', 0.03),
    hangSeconds: num('BENCH_HANG_SECONDS', 45, 1),
    githubLatencyMs: num('BENCH_GITHUB_LATENCY_MS', 20),
    llmLatencyMs: num('BENCH_LLM_LATENCY_MS', 400),
    pool: Math.floor(num('BENCH_POOL', 4, 2)),
    seed: Math.floor(num('BENCH_SEED', Math.floor(Math.random() * 2 ** 31))),
    keepLogs: process.env.BENCH_KEEP_LOGS === '1',
  };
}
