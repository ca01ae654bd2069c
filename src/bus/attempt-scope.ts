import { AsyncLocalStorage } from 'node:async_hooks';

/** What an attempt's adapters report back to the bus while its handler runs. */
export interface AttemptScope {
  /** Service groups that answered a request of this attempt successfully. */
  servicesOk: Set<string>;
}

const scope = new AsyncLocalStorage<AttemptScope>();

/** Runs a handler with its own scope (adapters are shared by concurrent attempts, so this is per async context). */
export function runInAttemptScope<T>(s: AttemptScope, fn: () => Promise<T>): Promise<T> {
  return scope.run(s, fn);
}

/** Called by an adapter when its service answered: a success of the group closes its circuit breaker. */
export function reportServiceOk(group: string): void {
  scope.getStore()?.servicesOk.add(group);
}
