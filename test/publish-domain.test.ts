/**
 * Stage 8's pure logic: the fail-closed gate (every way a PR is refused, in
 * words), the month of a merge date, the record, the Parquet file read back
 * with its explicit schema by hyparquet, and the environment's Dockerfile and lock.
 */
import { describe, expect, it } from 'vitest';
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet';
import { dockerfileFor, environmentFiles, environmentLock } from '../src/domain/environment-lock.js';
import { judgePublication, machineAllowed, secretsFoundIn, type PassingBenchmark, type PrEvidence, type RunEvidence } from '../src/domain/publish-gate.js';
import { encodeMonthFile, PARQUET_COLUMNS } from '../src/domain/publish-parquet.js';
import { buildRecord, monthFilePath, monthOf, monthRows, taskId, type PublishedRecord } from '../src/domain/publish-record.js';

const pr: PrEvidence = {
  id: 7, benchmarkDecision: 'faster', benchmarkRunId: 70, containerName: 'local:/e/venv#/e/src', environmentDigest: 'sha256:abc',
  executor: 'local', mergedAt: new Date('2024-03-31T23:30:00Z'), mergeCommitSha: 'm'.repeat(40), baseSha: 'b'.repeat(40),
  renderedProblem: 'Make it faster.', patch: 'diff --git a/x.py b/x.py\n',
};
const run: RunEvidence = {
  id: 70, pullRequestId: 7, succeeded: true, decision: 'faster', reason: null, testsOk: true, maxSpeedup: 3.2, maxSpeedupLowerBound: 2.5,
  containerName: 'local:/e/venv#/e/src', environmentDigest: 'sha256:abc', machine: { name: 'bench-1', cpu_model: 'Xeon', cores: 2 }, machineFingerprint: 'fp-1234',
  finishedAt: new Date('2024-04-02T00:00:00Z'),
};
const passing: PassingBenchmark[] = [
  { name: 'benchmarks.time_a', params: null, speedup: 1.4, speedupLowerBound: 1.2, pValue: 0.0001 },
  { name: 'benchmarks.time_b', params: ['n=1000'], speedup: 3.2, speedupLowerBound: 2.5, pValue: 0.00001 },
];
const gate = { minSpeedup: 1.05, machines: [] as string[] };

describe('the publish gate (fail-closed)', () => {
  it('lets a PR through only with the whole chain of evidence', () => {
    expect(judgePublication(pr, run, passing, gate)).toEqual({ ok: true });
    // A run that did not record its environment is judged on the rest.
    expect(judgePublication(pr, { ...run, environmentDigest: null, containerName: null }, passing, gate)).toEqual({ ok: true });
  });

  const refusals: [string, Partial<PrEvidence> | null, Partial<RunEvidence> | null | 'missing', PassingBenchmark[] | null, RegExp][] = [
    ['no run named', { benchmarkRunId: null }, null, null, /no benchmark run is named/],
    ['the run does not exist', null, 'missing', null, /run 70 does not exist/],
    ['the run measured another PR', null, { pullRequestId: 8 }, null, /another pull request/],
    ['the run failed', null, { succeeded: false, reason: 'runner died' }, null, /did not succeed: runner died/],
    ['the run never finished', null, { finishedAt: null }, null, /never finished/],
    ['tests failed', null, { testsOk: false }, null, /tests failed/],
    ['the run decided no change', null, { decision: 'no change' }, null, /decided no change, not faster/],
    ['the spine says slower', { benchmarkDecision: 'slower' }, null, null, /stage 7 decided slower/],
    ['no benchmark passed', null, null, [], /no benchmark that passed the PR-level gate/],
    ['lower bound below the minimum', null, { maxSpeedupLowerBound: 1.02 }, null, /1\.02x .*below PERFMINE_MIN_SPEEDUP \(1\.05x\)/],
    ['a passing benchmark below the minimum only', null, null, [{ ...passing[0], speedupLowerBound: 1.01 }], /1\.01x .*below/],
    ['no lower bound', null, { maxSpeedupLowerBound: null }, null, /no lower-bound speedup/],
    ['the environment changed since', { containerName: 'local:/other/venv#/other/src' }, null, null, /environment changed after benchmark run 70/],
    ['the run measured another digest', null, { environmentDigest: 'sha256:old' }, null, /environment changed after benchmark run 70 measured it \(sha256:old then, sha256:abc now\)/],
    ['no environment', { environmentDigest: null }, null, null, /no verified environment/],
    ['no merge date', { mergedAt: null }, null, null, /no merge date/],
    ['no problem', { renderedProblem: null }, null, null, /no rendered problem/],
  ];
  for (const [name, prChange, runChange, pass, reason] of refusals) {
    it(`refuses: ${name}`, () => {
      const r = runChange === 'missing' ? null : { ...run, ...(runChange ?? {}) };
      const v = judgePublication({ ...pr, ...(prChange ?? {}) }, r, pass ?? passing, gate);
      expect(v.ok).toBe(false);
      expect(!v.ok && v.reason).toMatch(/^not published: /);
      expect(!v.ok && v.reason).toMatch(reason);
    });
  }

  it('allows any machine when PERFMINE_PUBLISH_MACHINES is empty, else only the listed ones (by name or fingerprint)', () => {
    expect(machineAllowed(run, [])).toBe(true);
    expect(machineAllowed(run, ['bench-1'])).toBe(true);
    expect(machineAllowed(run, ['fp-1234'])).toBe(true);
    expect(machineAllowed(run, ['bench-2'])).toBe(false);
    expect(machineAllowed({ machine: null, machineFingerprint: null }, ['bench-1'])).toBe(false);
    const v = judgePublication(pr, run, passing, { ...gate, machines: ['clean-cloud-1'] });
    expect(!v.ok && v.reason).toMatch(/ran on fp-1234 \/ bench-1, not a machine PERFMINE_PUBLISH_MACHINES allows \(clean-cloud-1\)/);
  });

  it('finds configured secrets in texts without naming them', () => {
    expect(secretsFoundIn(['a hf_secretvalue123 b', 'x'], ['hf_secretvalue123', 'ghp_other'])).toEqual([0]);
    expect(secretsFoundIn(['nothing'], ['hf_secretvalue123'])).toEqual([]);
  });
});

function record(number: number, mergedAt: string, o: Partial<PublishedRecord> = {}): PublishedRecord {
  const lock = environmentLock({
    taskId: taskId('acme', 'fastlib', number), owner: 'acme', repo: 'fastlib', baseCommit: 'b'.repeat(40), python: '3.11',
    requirements: [`numpy==1.26.4 --hash=sha256:${'1'.repeat(64)}`], buildScript: 'python setup.py build_ext --inplace',
    executor: 'local', environmentDigest: 'sha256:abc', image: null,
  });
  return {
    ...buildRecord({
      pr: { ...pr, id: number, mergedAt: new Date(mergedAt), number, classification: 'use_better_algorithm', difficulty: 'easy' },
      repository: { owner: 'acme', name: 'fastlib' }, run, passing, lock, image: null, version: '0.1.0', publishedAt: new Date('2024-05-01T00:00:00Z'),
    }),
    ...o,
  };
}

describe('the record and its month', () => {
  it('groups by the UTC month of the merge date and names the file after it', () => {
    expect(monthOf('2024-03-31T23:30:00Z')).toBe('2024-03');
    expect(monthOf('2024-03-31T23:30:00-02:00')).toBe('2024-04');
    expect(monthFilePath('perfmine', '2024-03')).toBe('data/perfmine@2024-03.parquet');
    expect(() => monthFilePath('perfmine', '2024-3')).toThrow();
  });

  it('holds the passing benchmarks fastest first, with the run\'s speedups and machine', () => {
    const r = record(7, '2024-03-31T23:30:00Z');
    expect(r.task_id).toBe('acme__fastlib-7');
    expect(r.benchmarks.map((b) => [b.name, b.speedup, b.params])).toEqual([['benchmarks.time_b', 3.2, '["n=1000"]'], ['benchmarks.time_a', 1.4, null]]);
    expect([r.max_speedup, r.max_speedup_lower_bound]).toEqual([3.2, 2.5]);
    expect(r.machine).toEqual(run.machine);
    expect(r.environment_path).toBe('environments/acme__fastlib-7');
  });

  it('a month\'s rows: every earlier row of the month, the new one replacing its own earlier row, in merge order', () => {
    const a = record(1, '2024-03-02T00:00:00Z');
    const b = record(2, '2024-03-20T00:00:00Z');
    const other = record(3, '2024-04-01T00:00:00Z');
    const bAgain = record(2, '2024-03-20T00:00:00Z', { max_speedup: 9 });
    const c = record(4, '2024-03-10T00:00:00Z');
    expect(monthRows([a, b, other], c).map((r) => r.task_id)).toEqual(['acme__fastlib-1', 'acme__fastlib-4', 'acme__fastlib-2']);
    const replaced = monthRows([a, b], bAgain);
    expect(replaced.map((r) => [r.task_id, r.max_speedup])).toEqual([['acme__fastlib-1', 3.2], ['acme__fastlib-2', 9]]);
  });
});

describe('the Parquet file', () => {
  it('reads back with its explicit schema and every value', async () => {
    const rows = [record(1, '2024-03-02T00:00:00Z'), record(2, '2024-03-20T00:00:00Z', { classification: null, benchmarks: [] })];
    const bytes = encodeMonthFile(rows, { dataset: 'perfmine', month: '2024-03', version: '0.1.0' });
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    const meta = parquetMetadata(file);
    expect(Number(meta.num_rows)).toBe(2);
    expect(meta.created_by).toBe('perfmine 0.1.0');
    expect(meta.key_value_metadata).toEqual(expect.arrayContaining([{ key: 'perfmine.month', value: '2024-03' }, { key: 'perfmine.dataset', value: 'perfmine' }]));
    const schema = parquetSchema(meta);
    expect(schema.children.map((c) => c.element.name)).toEqual(PARQUET_COLUMNS);
    const el = (name: string) => schema.children.find((c) => c.element.name === name)!.element;
    expect(el('number')).toMatchObject({ type: 'INT32', repetition_type: 'REQUIRED' });
    expect(el('merged_at')).toMatchObject({ type: 'INT64', converted_type: 'TIMESTAMP_MILLIS' });
    expect(el('max_speedup')).toMatchObject({ type: 'DOUBLE', repetition_type: 'REQUIRED' });
    expect(el('classification')).toMatchObject({ type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' });
    expect(el('environment_lock')).toMatchObject({ type: 'BYTE_ARRAY', converted_type: 'JSON' });
    const benchmarks = schema.children.find((c) => c.element.name === 'benchmarks')!;
    expect(benchmarks.element.converted_type).toBe('LIST');
    expect(benchmarks.children[0].children[0].children.map((c) => [c.element.name, c.element.type])).toEqual([
      ['name', 'BYTE_ARRAY'], ['params', 'BYTE_ARRAY'], ['speedup', 'DOUBLE'], ['speedup_lower_bound', 'DOUBLE'], ['p_value', 'DOUBLE'],
    ]);

    const read = await parquetReadObjects({ file });
    expect(read).toHaveLength(2);
    const [first, second] = read;
    expect(first.task_id).toBe('acme__fastlib-1');
    expect(first.number).toBe(1);
    expect((first.merged_at as Date).toISOString()).toBe('2024-03-02T00:00:00.000Z');
    expect(first.benchmarks).toEqual(rows[0].benchmarks);
    expect(first.environment_lock).toEqual(rows[0].environment_lock);
    expect(first.machine).toEqual(rows[0].machine);
    expect(first.max_speedup).toBe(3.2);
    expect(second.classification).toBeNull();
    expect(second.benchmarks).toEqual([]);
    // Whole numbers stay DOUBLE (the schema is explicit, never guessed from the data).
    const whole = encodeMonthFile([record(3, '2024-03-02T00:00:00Z', { max_speedup: 3 })], { dataset: 'perfmine', month: '2024-03', version: '0.1.0' });
    const wholeSchema = parquetSchema(parquetMetadata(whole.buffer.slice(whole.byteOffset, whole.byteOffset + whole.byteLength) as ArrayBuffer));
    expect(wholeSchema.children.find((c) => c.element.name === 'max_speedup')!.element.type).toBe('DOUBLE');
  });

  it('is the same bytes for the same rows', () => {
    const rows = [record(1, '2024-03-02T00:00:00Z')];
    const meta = { dataset: 'perfmine', month: '2024-03', version: '0.1.0' };
    expect(Buffer.from(encodeMonthFile(rows, meta)).equals(Buffer.from(encodeMonthFile(rows, meta)))).toBe(true);
  });
});

describe('the environment\'s Dockerfile and lock', () => {
  const lock = environmentLock({
    taskId: 'acme__fastlib-7', owner: 'acme', repo: 'fastlib', baseCommit: 'b'.repeat(40), python: '3.10',
    requirements: [`numpy==1.26.4 --hash=sha256:${'1'.repeat(64)}`], buildScript: 'python setup.py build_ext --inplace',
    executor: 'local', environmentDigest: 'sha256:abc', image: null,
  });

  it('rebuilds from the lock: the Python version, the hashed pins, the base commit, the build script', () => {
    const d = dockerfileFor(lock);
    expect(d).toMatch(/^FROM python:3\.10-slim-bookworm$/m);
    expect(d).toContain('--require-hashes -r /perfmine/requirements.txt');
    expect(d).toContain(`checkout --detach ${'b'.repeat(40)}`);
    expect(d).toContain('ARG REPOSITORY_URL=https://github.com/acme/fastlib.git');
    expect(d).toMatch(/^RUN bash \/perfmine\/build\.sh$/m);
    const unhashed = dockerfileFor({ ...lock, requirements: ['numpy==1.26.4'] });
    expect(unhashed).not.toContain('--require-hashes');
  });

  it('writes four files under the task\'s directory', () => {
    const files = environmentFiles(lock, 'environments/acme__fastlib-7');
    expect(files.map((f) => f.path)).toEqual(['Dockerfile', 'requirements.txt', 'build.sh', 'perfmine-lock.json'].map((f) => `environments/acme__fastlib-7/${f}`));
    expect(files[1].text).toBe(`numpy==1.26.4 --hash=sha256:${'1'.repeat(64)}\n`);
    expect(files[2].text).toBe('python setup.py build_ext --inplace\n');
    expect(JSON.parse(files[3].text)).toEqual(lock);
  });
});

describe('stage 8\'s settings', () => {
  it('default to the local directory; the hub needs a repository and a token that starts with hf_, never printed', async () => {
    const { loadConfig, describeConfig } = await import('../src/config.js');
    const c = loadConfig({});
    expect(c.PERFMINE_PUBLISH_TARGETS).toEqual(['local']);
    expect(c.PERFMINE_PUBLISH_MACHINES).toEqual([]);
    expect(c.PERFMINE_MIN_SPEEDUP).toBe(1.05);
    expect(c.PERFMINE_PUBLISH_DATASET).toBe('perfmine');
    expect(() => loadConfig({ PERFMINE_PUBLISH_TARGETS: 'local,hub' })).toThrow(/PERFMINE_HF_REPO=undefined: needed by PERFMINE_PUBLISH_TARGETS=hub/);
    const badToken = 'token-without-prefix-123';
    let message = '';
    try {
      loadConfig({ PERFMINE_PUBLISH_TARGETS: 'hub', PERFMINE_HF_REPO: 'perfmine/tasks', PERFMINE_HF_TOKEN: badToken });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/PERFMINE_HF_TOKEN=\(hidden\): a Hugging Face token starts with hf_/);
    expect(message).not.toContain(badToken);
    const token = 'hf_abcdefghijklmnop';
    const ok = loadConfig({ PERFMINE_PUBLISH_TARGETS: 'hub', PERFMINE_HF_REPO: 'perfmine/tasks', PERFMINE_HF_TOKEN: token, PERFMINE_PUBLISH_MACHINES: 'a, b' });
    expect(ok.PERFMINE_PUBLISH_MACHINES).toEqual(['a', 'b']);
    expect(JSON.stringify(describeConfig(ok))).not.toContain(token);
    expect(() => loadConfig({ PERFMINE_PUBLISH_TARGETS: 'ftp' })).toThrow(/PERFMINE_PUBLISH_TARGETS/);
    expect(() => loadConfig({ PERFMINE_PUBLISH_DATASET: '../x' })).toThrow(/PERFMINE_PUBLISH_DATASET/);
  });
});
