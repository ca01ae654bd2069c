import { pino, type Logger } from 'pino';

export type { Logger };

/** Field paths that may carry secrets; pino replaces their values. */
const REDACT = [
  'token', '*.token', 'tokens', 'authorization', '*.authorization', 'headers.authorization',
  '*.headers.authorization', 'apiKey', '*.apiKey', 'password', '*.password',
  'connectionString', '*.connectionString', 'config.GITHUB_TOKEN', 'config.GITHUB_TOKENS',
  'config.OPENAI_API_KEY', 'config.DATABASE_URL', 'config.PERFMINE_HF_TOKEN', 'config.PERFMINE_PUBLISH_REGISTRY_PASSWORD',
  'accessToken', '*.accessToken', 'authconfig', '*.authconfig',
];

/** Masks credentials inside URLs and bearer headers that end up in messages. */
export function scrubSecrets(text: string): string {
  return text
    .replace(/(\/\/[^:/@\s]+:)[^@\s]+@/g, '$1***@')
    .replace(/\b(gh[pousr]_[A-Za-z0-9]{8,}|github_pat_[A-Za-z0-9_]{8,}|sk-[A-Za-z0-9_-]{8,}|hf_[A-Za-z0-9]{8,})\b/g, '***')
    .replace(/(bearer|token)\s+[A-Za-z0-9._-]{8,}/gi, '$1 ***');
}

/** `destination`: where lines go instead of stderr (tests read what perfmine logs). */
export function createLogger(level: string, pretty = false, destination?: pino.DestinationStream): Logger {
  return pino({
    level,
    redact: { paths: REDACT, censor: '***' },
    base: { pid: process.pid },
    hooks: {
      logMethod(args, method) {
        // Messages are free text; scrub them too.
        const scrubbed = args.map((a) => (typeof a === 'string' ? scrubSecrets(a) : a));
        method.apply(this, scrubbed as Parameters<typeof method>);
      },
    },
    // Logs go to stderr so command output on stdout stays clean for scripts.
    transport: pretty && !destination ? { target: 'pino-pretty', options: { colorize: true, destination: 2 } } : undefined,
  }, pretty && !destination ? undefined : destination ?? pino.destination(2));
}

/** A logger that writes nothing, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
