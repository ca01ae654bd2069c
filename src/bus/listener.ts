import pgListen, { type Subscriber } from 'pg-listen';
import type { Logger } from '../log.js';

export const CHANNEL = 'perfmine';

// pg-listen is CommonJS with an `exports.default`; under Node's ESM loader the
// default import is the whole module object.
const createSubscriber = pgListen.default;

/**
 * The doorbell: LISTEN on a dedicated connection that reconnects forever.
 * A notification is only a hint; `onConnected` runs after the first connect
 * and after every reconnect so the caller can scan for anything missed.
 *
 * A self-addressed ping checks now and then that notifications still arrive;
 * if one does not (and pg-listen is not already reconnecting), the subscriber
 * is replaced. pg-listen's reconnect loop does not stop when its subscriber is
 * closed: a retired subscriber that gets through later would hold a
 * connection nobody uses. Every subscriber therefore closes itself the moment
 * it connects if it is no longer the current one, so no connection leaks,
 * however long an outage lasts.
 */
export class Listener {
  private subscriber?: Subscriber;
  private checkTimer?: NodeJS.Timeout;
  private pingToken?: string;
  private reconnecting = false;
  private rebuilding = false;
  private closed = false;
  /** How many times the connection came up (1 + reconnects). */
  connections = 0;
  /** Doorbells received (pings excluded). */
  notifications = 0;

  constructor(
    private connectionString: string,
    private log: Logger,
    private handlers: { onPayload(payload: string): void; onConnected(): void; onNotification?(): void },
    private checkIntervalMs = 10_000,
    private applicationName = `perfmine-listener:${process.pid}`,
  ) {}

  /** Whether the LISTEN connection is up (for health checks). */
  get live(): boolean {
    return !!this.subscriber && !this.reconnecting && !this.rebuilding;
  }

  async start(): Promise<void> {
    await this.open();
    this.checkTimer = setInterval(() => void this.check(), this.checkIntervalMs);
    this.checkTimer.unref();
  }

  private async open(): Promise<void> {
    const sub = createSubscriber(
      { connectionString: this.connectionString, application_name: this.applicationName, connectionTimeoutMillis: 5000 },
      {
        retryLimit: Infinity,
        retryTimeout: Infinity, // pg-listen gives up after 3 s by default
        retryInterval: (attempt) => Math.min(1000, 100 * 2 ** Math.min(attempt, 4)),
        paranoidChecking: Math.max(1000, Math.floor(this.checkIntervalMs / 2)),
        parse: (s) => s, // payloads are plain words, not JSON
        serialize: (s) => String(s),
      },
    );
    const current = () => !this.closed && this.subscriber === sub;
    sub.events.on('notification', (n) => {
      if (!current()) return;
      const payload = String(n.payload ?? '');
      if (payload.startsWith('ping:')) {
        if (payload === this.pingToken) this.pingToken = undefined;
        return;
      }
      this.notifications++;
      this.handlers.onNotification?.();
      this.handlers.onPayload(payload);
    });
    sub.events.on('reconnect', (attempt) => {
      if (!current()) return;
      this.reconnecting = true;
      if (attempt === 1) this.log.warn('listener connection lost; reconnecting');
    });
    sub.events.on('connected', () => {
      if (!current()) {
        // A retired subscriber's reconnect loop got through: hang up at once.
        void sub.close().catch(() => undefined);
        return;
      }
      this.reconnecting = false;
      this.pingToken = undefined;
      this.connections++;
      this.log.info({ connections: this.connections }, 'listening');
      this.handlers.onConnected();
    });
    sub.events.on('error', (err) => { if (current()) this.log.error({ err: err.message }, 'listener error'); });
    this.subscriber = sub;
    try {
      await sub.connect();
      await sub.listenTo(CHANNEL);
    } catch (err) {
      this.subscriber = undefined;
      await sub.close().catch(() => undefined);
      throw err;
    }
    this.handlers.onConnected(); // the subscription exists only now
  }

  /** If our own ping from the last check never came back, rebuild the connection. */
  private async check(): Promise<void> {
    if (this.closed || this.rebuilding) return;
    if (!this.subscriber) return void this.rebuild();
    if (this.reconnecting) return; // pg-listen is already on it
    if (this.pingToken) {
      this.log.warn('listener missed its own ping; rebuilding the connection');
      return void this.rebuild();
    }
    this.pingToken = `ping:${process.pid}:${Date.now()}`;
    await this.subscriber.notify(CHANNEL, this.pingToken as never).catch(() => undefined);
  }

  /** Replaces the subscriber, trying again (with backoff) until it is up or the listener is closed. */
  private async rebuild(): Promise<void> {
    this.rebuilding = true;
    this.pingToken = undefined;
    const old = this.subscriber;
    this.subscriber = undefined;
    await old?.close().catch(() => undefined);
    try {
      for (let attempt = 0; !this.closed; attempt++) {
        try {
          await this.open();
          return;
        } catch (err) {
          if (attempt === 0) this.log.error({ err: (err as Error).message }, 'listener rebuild failed; trying again');
          await new Promise((r) => setTimeout(r, Math.min(1000, 100 * 2 ** Math.min(attempt, 4))));
        }
      }
    } finally {
      this.rebuilding = false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.checkTimer) clearInterval(this.checkTimer);
    const sub = this.subscriber;
    this.subscriber = undefined;
    await sub?.close().catch(() => undefined);
  }
}
