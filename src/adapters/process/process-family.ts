/**
 * A child's "family": every process it led to, found in three independent
 * ways so that none escapes by one trick alone:
 *  - its process group and session (the child starts as a session leader);
 *  - a tag in the environment (inherited by anything that does not clear it,
 *    which catches grandchildren that left with setsid, as benchmark
 *    processes do);
 *  - descent (a live process whose parent is a member).
 * Killing a family: SIGTERM to all, then SIGKILL to what is left after a
 * grace period, re-scanning until nothing is left.
 */
import { environHas, isLive, listProcesses, procAvailable, readProc, type ProcEntry } from './proc-table.js';

export const RUN_TAG_VARIABLE = 'PERFMINE_RUN_TAG';

export interface FamilySpec {
  /** The child we started: its pid is also the id of its process group and session. */
  leader: number;
  /** The leader's start time (clock ticks since boot), to tell it from a later process with the same pid. */
  leaderStartTicks: number | null;
  /** Value of PERFMINE_RUN_TAG in the family's environment (null: not tagged). */
  tag: string | null;
}

/** The family's live members (never this process). */
export function familyMembers(spec: FamilySpec): ProcEntry[] {
  const all = listProcesses();
  // The leader's pid can name another family only if the pid was reused (a
  // pid stays taken while any process is in its group or session).
  const leader = readProc(spec.leader);
  const groupIsOurs = !isLive(leader) || spec.leaderStartTicks === null || leader.startTicks === spec.leaderStartTicks;
  const entry = spec.tag ? `${RUN_TAG_VARIABLE}=${spec.tag}` : null;
  const members = new Map<number, ProcEntry>();
  for (const p of all) {
    if (p.pid === process.pid) continue;
    if ((groupIsOurs && (p.pgid === spec.leader || p.sid === spec.leader)) || (entry && environHas(p.pid, entry))) members.set(p.pid, p);
  }
  // Descendants of members, to any depth.
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) {
      if (!members.has(p.pid) && members.has(p.ppid) && p.pid !== process.pid) {
        members.set(p.pid, p);
        grew = true;
      }
    }
  }
  return [...members.values()];
}

function signalAll(spec: FamilySpec, members: ProcEntry[], sig: NodeJS.Signals): void {
  // The group first, in one system call, so a member forking in a loop cannot outrun us.
  try {
    process.kill(-spec.leader, sig);
  } catch { /* no such group (any more) */ }
  for (const m of members) {
    try {
      process.kill(m.pid, sig);
    } catch { /* already gone */ }
  }
}

const POLL_MS = 50;
const MAX_KILL_ROUNDS = 40;

/**
 * The steps of killing a family, as a generator that yields how long to wait
 * before the next step (so one algorithm serves the async and the sync
 * drivers below). Returns how many processes were signalled.
 */
function* terminationSteps(spec: FamilySpec, graceMs: number): Generator<number, number, void> {
  const seen = new Set<number>();
  const find = () => {
    const members = procAvailable ? familyMembers(spec) : [];
    for (const m of members) seen.add(m.pid);
    return members;
  };
  let members = find();
  signalAll(spec, members, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    yield Math.min(POLL_MS, Math.max(1, deadline - Date.now()));
    members = find();
    if (gone(spec, members)) return seen.size;
  }
  for (let round = 0; round < MAX_KILL_ROUNDS; round++) {
    signalAll(spec, members, 'SIGKILL');
    yield POLL_MS / 5;
    members = find();
    if (gone(spec, members)) break;
  }
  return seen.size;
}

/**
 * Whether the family is gone. With /proc, when no live member is left
 * (zombies do not count: some init processes never reap them); without it,
 * when signal 0 finds nobody in the group.
 */
function gone(spec: FamilySpec, members: ProcEntry[]): boolean {
  if (procAvailable) return members.length === 0;
  try {
    process.kill(-spec.leader, 0);
    return false;
  } catch {
    return true;
  }
}

/** SIGTERM to the family, SIGKILL to what is left after `graceMs`. */
export async function killFamily(spec: FamilySpec, graceMs: number): Promise<number> {
  const steps = terminationSteps(spec, graceMs);
  for (let step = steps.next(); ; step = steps.next()) {
    if (step.done) return step.value;
    await new Promise((resolve) => setTimeout(resolve, step.value));
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** The same, blocking: for an 'exit' hook, where no timer will ever fire. */
export function killFamilySync(spec: FamilySpec, graceMs: number): number {
  const steps = terminationSteps(spec, graceMs);
  for (let step = steps.next(); ; step = steps.next()) {
    if (step.done) return step.value;
    Atomics.wait(sleeper, 0, 0, step.value);
  }
}
