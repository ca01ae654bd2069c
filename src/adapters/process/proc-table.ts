/**
 * The process table as Linux shows it in /proc: who belongs to which process
 * group and session, who is whose parent, and which processes carry a tag in
 * their environment. Synchronous on purpose: it also runs in an 'exit' hook,
 * where nothing asynchronous gets to run. Elsewhere (no /proc) it is empty and
 * callers fall back to signalling the process group alone.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcEntry {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** One-letter state; Z (zombie) and X (dead) are already gone for our purposes. */
  state: string;
  /** Start time in clock ticks since boot: with the pid, it names one process even after pid reuse. */
  startTicks: number;
}

export const procAvailable = (() => {
  try {
    readFileSync('/proc/self/stat');
    return true;
  } catch {
    return false;
  }
})();

/** One process, or null when it does not exist (or has already exited and been reaped). */
export function readProc(pid: number): ProcEntry | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name is in parentheses and may itself contain spaces and ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return {
      pid, state: fields[0], ppid: Number(fields[1]), pgid: Number(fields[2]), sid: Number(fields[3]),
      startTicks: Number(fields[19]),
    };
  } catch {
    return null;
  }
}

/** Whether a process exists and is not a zombie. */
export function isLive(p: ProcEntry | null): p is ProcEntry {
  return p !== null && p.state !== 'Z' && p.state !== 'X';
}

/** Every live process we can see. */
export function listProcesses(): ProcEntry[] {
  if (!procAvailable) return [];
  const out: ProcEntry[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = readProc(Number(name));
    if (isLive(p)) out.push(p);
  }
  return out;
}

/** Whether `KEY=value` is in the process's environment (false when it cannot be read). */
export function environHas(pid: number, entry: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(entry);
  } catch {
    return false;
  }
}

/** The start time of a live process, or null. */
export function startTicksOf(pid: number): number | null {
  const p = readProc(pid);
  return isLive(p) ? p.startTicks : null;
}
