import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import type { HealthReport } from './health.js';
import type { PerfmineMetrics } from './metrics.js';

export interface OpsServerOptions {
  port: number;
  host?: string;
  metrics: PerfmineMetrics;
  health: () => Promise<HealthReport>;
  /** Why the daemon is not ready (starting, stopping), or null when it is. */
  notReady: () => string | null;
  log: Logger;
}

export interface OpsServer {
  url: string;
  close(): Promise<void>;
}

/** The daemon's HTTP listener: /metrics, /healthz, /readyz. Plain node:http, GET only. */
export async function startOpsServer(o: OpsServerOptions): Promise<OpsServer> {
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
  };
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'GET only' });
    void (async () => {
      try {
        if (path === '/metrics') {
          const { contentType, body } = await o.metrics.render();
          res.writeHead(200, { 'content-type': contentType }).end(body);
        } else if (path === '/healthz') {
          const report = await o.health();
          json(res, report.ok ? 200 : 503, { status: report.ok ? 'ok' : 'down', down: Object.keys(report.checks).filter((k) => !report.checks[k].ok), checks: report.checks });
        } else if (path === '/readyz') {
          const reason = o.notReady();
          json(res, reason ? 503 : 200, reason ? { status: 'not ready', reason } : { status: 'ready' });
        } else {
          json(res, 404, { error: 'not found', paths: ['/metrics', '/healthz', '/readyz'] });
        }
      } catch (err) {
        o.log.error({ err: (err as Error).message, path }, 'ops endpoint failed');
        if (!res.headersSent) json(res, 500, { error: (err as Error).message });
        else res.end();
      }
    })();
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host ?? '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
