/**
 * The orphan registry: every running child family is recorded as a small
 * file, named with the owner's pid, in a directory shared by the perfmine
 * processes of a host. A daemon killed with SIGKILL runs no exit hook; its
 * direct children die with it (pdeathsig), but their own children would live
 * on. The next daemon to start calls reapOrphans(), which kills the families
 * whose owner is dead.
 */
import { mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isLive, readProc } from './proc-table.js';
import { killFamily, type FamilySpec } from './process-family.js';

export interface RunRecord extends FamilySpec {
  owner: { pid: number; startTicks: number | null };
  /** Pids and start times mean nothing after a reboot: records of another boot are just removed. */
  bootId: string | null;
  command: string;
  startedAt: string;
}

/** `PERFMINE_DATA_DIR/procs` (absolute), the directory the daemon reaps at start. */
export function defaultRegistryDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.PERFMINE_DATA_DIR || './.perfmine', 'procs');
}

let bootId: string | null | undefined;

/** The kernel's id of this boot (null where there is none). */
export function currentBootId(): string | null {
  if (bootId === undefined) {
    try {
      bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      bootId = null;
    }
  }
  return bootId;
}

const made = new Set<string>();

/** Writes the record; returns its file (remove it with forgetRun when the family is gone). */
export function recordRun(dir: string, record: RunRecord): string {
  if (!made.has(dir)) {
    // Only the registry itself is private: a recursive mode would also close the data
    // directory above it to the embedded server's own OS user.
    mkdirSync(path.dirname(dir), { recursive: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    made.add(dir);
  }
  const file = path.join(dir, `${record.owner.pid}-${record.leader}.json`);
  writeFileSync(file, JSON.stringify(record), { mode: 0o600 });
  return file;
}

export function forgetRun(file: string): void {
  try {
    unlinkSync(file);
  } catch { /* already gone */ }
}

/** Whether the recorded owner is still the same live process. */
function ownerAlive(owner: RunRecord['owner']): boolean {
  const p = readProc(owner.pid);
  return isLive(p) && (owner.startTicks === null || p.startTicks === owner.startTicks);
}

export interface ReapedFamily {
  ownerPid: number;
  leader: number;
  command: string;
  /** Processes that were still alive and got signalled. */
  killed: number;
}

/**
 * Kills the recorded families whose owner process is dead and removes their
 * records. Records of live owners are left alone (another daemon's children).
 * A missing directory is an empty registry.
 */
export async function reapOrphans(dir: string = defaultRegistryDir(), opts: { graceMs?: number } = {}): Promise<ReapedFamily[]> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const reaped: ReapedFamily[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    let record: RunRecord;
    try {
      record = JSON.parse(readFileSync(file, 'utf8')) as RunRecord;
    } catch {
      forgetRun(file); // half-written by an owner killed mid-write: nothing to identify
      continue;
    }
    if (record.bootId !== currentBootId()) {
      forgetRun(file);
      continue;
    }
    if (ownerAlive(record.owner)) continue;
    const killed = await killFamily(record, opts.graceMs ?? 2000);
    forgetRun(file);
    reaped.push({ ownerPid: record.owner.pid, leader: record.leader, command: record.command, killed });
  }
  return reaped;
}
