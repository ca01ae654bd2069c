/**
 * A real image registry for tests: Debian's `docker-registry` (distribution
 * 2.8) with a config of our own (filesystem storage in a temporary
 * directory, 127.0.0.1 on a free port, no authentication), which the Docker
 * engine pushes to with no daemon setting (127.0.0.0/8 is insecure by
 * default). CI installs it (.ci/docker.sh up).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { closeNow, listenOnLoopback } from '../../src/standins/loopback.js';

export const REGISTRY_BINARY = 'docker-registry';

export interface TestRegistry {
  /** host:port */
  host: string;
  dir: string;
  stop(): Promise<void>;
  /** Starts it again on the same port and storage (after stop). */
  start(): Promise<void>;
  destroy(): Promise<void>;
}

/** Why no registry can run here (null: it can). */
export function registryUnavailable(): string | null {
  const found = spawnSync('sh', ['-c', `command -v ${REGISTRY_BINARY}`], { encoding: 'utf8' });
  return found.status === 0 ? null : `no ${REGISTRY_BINARY} on PATH (Debian: apt-get install -y docker-registry)`;
}

export async function startRegistry(): Promise<TestRegistry> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'perfmine-registry-'));
  const probe = await listenOnLoopback(0);
  const port = probe.port;
  await closeNow(probe.server);
  const host = `127.0.0.1:${port}`;
  const config = path.join(dir, 'config.yml');
  writeFileSync(config, [
    'version: 0.1', 'log:', '  level: warn', 'storage:', '  filesystem:', `    rootdirectory: ${path.join(dir, 'storage')}`,
    '  delete:', '    enabled: true', 'http:', `  addr: ${host}`, `  secret: ${Math.random().toString(36).slice(2)}`, '',
  ].join('\n'));
  let child: ChildProcess | null = null;

  const registry: TestRegistry = {
    host, dir,
    async start() {
      const log = openSync(path.join(dir, 'registry.log'), 'a');
      child = spawn(REGISTRY_BINARY, ['serve', config], { stdio: ['ignore', log, log] });
      const end = Date.now() + 15_000;
      for (;;) {
        const ok = await fetch(`http://${host}/v2/`).then((r) => r.ok, () => false);
        if (ok) return;
        if (child.exitCode !== null) throw new Error(`${REGISTRY_BINARY} exited ${child.exitCode} (log: ${path.join(dir, 'registry.log')})`);
        if (Date.now() > end) throw new Error(`${REGISTRY_BINARY} did not answer on ${host} within 15 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      const c = child;
      child = null;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (c.exitCode === null) c.kill('SIGKILL');
    },
    async destroy() {
      await registry.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await registry.start();
  return registry;
}
