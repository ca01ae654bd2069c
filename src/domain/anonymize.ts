/**
 * Anonymization of text that goes into a problem statement (and to the
 * extractor): nothing in it may name or reach a person, a machine or a secret.
 * Everywhere, code included: e-mail addresses, home-directory paths, IP
 * addresses and token-shaped strings (a traceback in a code block leaks a home
 * directory as well as prose does). In prose only: @-mentions, GitHub user
 * URLs and images; `@property` in code is a decorator, not a person, so code
 * (fenced blocks, inline spans, `>>>` sessions) keeps its `@`s.
 */
import { splitCode } from './markdown.js';

export interface AnonymizationCounts {
  emails: number;
  mentions: number;
  user_urls: number;
  images: number;
  home_paths: number;
  ips: number;
  tokens: number;
}

export const emptyCounts = (): AnonymizationCounts =>
  ({ emails: 0, mentions: 0, user_urls: 0, images: 0, home_paths: 0, ips: 0, tokens: 0 });

export function addCounts(a: AnonymizationCounts, b: AnonymizationCounts): AnonymizationCounts {
  const out = { ...a };
  for (const k of Object.keys(b) as Array<keyof AnonymizationCounts>) out[k] += b[k];
  return out;
}

/** Credentials by their published shapes (GitHub, OpenAI, AWS, Slack, Hugging Face, GitLab, Google, npm, JWTs). */
export const TOKEN_SHAPE_SOURCES: readonly string[] = [
  String.raw`\bgh[pousr]_[A-Za-z0-9]{20,}`,
  String.raw`\bgithub_pat_[A-Za-z0-9_]{20,}`,
  String.raw`\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}`,
  String.raw`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`,
  String.raw`\bxox[abprs]-[A-Za-z0-9-]{10,}`,
  String.raw`\bhf_[A-Za-z0-9]{20,}`,
  String.raw`\bglpat-[A-Za-z0-9_-]{20,}`,
  String.raw`\bAIza[0-9A-Za-z_-]{35}`,
  String.raw`\bnpm_[A-Za-z0-9]{36}`,
  String.raw`\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}`,
];
const TOKEN_SHAPES = new RegExp(TOKEN_SHAPE_SOURCES.join('|'), 'g');
/** `token = "..."`, `password: ...`, `Authorization: Bearer ...`: the value goes, the name stays. */
const SECRET_ASSIGNMENT = /\b((?:api[_-]?key|access[_-]?key|secret(?:[_-]?key)?|token|password|passwd|auth)\s*[:=]\s*["']?|bearer\s+)([A-Za-z0-9._~+/=-]{8,})/gi;
const EMAIL = /\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b/g;
/** /home/NAME, /Users/NAME, C:\Users\NAME: the user's name goes, `~` stays. */
const HOME_PATH = /(?:\/home\/|\/Users\/|\b[A-Za-z]:\\Users\\|\b[A-Za-z]:\/Users\/)([^\s/\\"'`<>:]+)/g;
const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
/** IPv4 not inside a longer dotted number (a version like 1.2.3.4.5), and full-form IPv6. */
const IPV4 = new RegExp(`(?<![\\w.])${OCTET}(?:\\.${OCTET}){3}(?![\\w]|\\.\\d)`, 'g');
const IPV6 = /(?<![\w:])(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}(?![\w:])/g;

const MARKDOWN_IMAGE = /!\[[^\]\n]*\]\([^)\s]*(?:\s+"[^"]*")?\)/g;
const HTML_IMAGE = /<img\b[^>]*>/gi;
const IMAGE_URL = /https?:\/\/(?:(?:private-)?user-images\.githubusercontent\.com|avatars\.githubusercontent\.com|github\.com\/user-attachments)\/[^\s)"'<>\]]+|https?:\/\/[^\s)"'<>\]]+?\.(?:png|jpe?g|gif|svg|webp|bmp|tiff?)(?:\?[^\s)"'<>\]]*)?(?![\w.])/gi;
/** github.com/NAME with nothing after the name: a person's (or an organization's) page. */
const GITHUB_PATHS_NOT_USERS = new Set(['about', 'apps', 'collections', 'contact', 'customer-stories', 'enterprise', 'events',
  'explore', 'features', 'issues', 'login', 'marketplace', 'new', 'notifications', 'orgs', 'pricing', 'pulls', 'search',
  'security', 'settings', 'site', 'sponsors', 'topics', 'trending']);
const USER_URL = /https?:\/\/(?:www\.)?github\.com\/([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))\/?(?=$|[\s)\]>"'.,;:!?])/g;

/**
 * An @-mention as GitHub links one: `@` not after a word character, a dot,
 * a slash or another `@`, then a login (and for a team, `/team`), not
 * followed by a dot and more name (`@functools.lru_cache`) or `(` (a decorator call).
 */
const MENTION = /(?<![\w.@/`\\])@([A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38})(\/[A-Za-z0-9_-]+)?(?![\w-]|\.\w|\()/g;
/** Names that are Python decorators far more often than people, even outside code blocks. */
const DECORATOR_NAMES = new Set(['property', 'staticmethod', 'classmethod', 'cached_property', 'dataclass', 'abstractmethod',
  'overload', 'override', 'wraps', 'lru_cache', 'cache', 'jit', 'njit', 'vectorize', 'guvectorize', 'contextmanager',
  'pytest', 'fixture', 'setter', 'getter', 'deleter', 'total_ordering', 'singledispatch', 'final', 'unique', 'numba',
  'cython', 'functools', 'typing', 'register']);
/** A line that is only a decorator, with the next line a def/class/another decorator: unfenced code, not a mention. */
const DECORATOR_LINE = /^[ \t]*@[\w.]+(?:\([^\n]*\))?[ \t]*\n(?=[ \t]*(?:async[ \t]+def|def|class|@)\b)/gm;

export interface Anonymized {
  text: string;
  counts: AnonymizationCounts;
}

/** The text with every kind above replaced by a neutral placeholder, and how many of each. */
export function anonymize(text: string | null | undefined): Anonymized {
  const counts = emptyCounts();
  if (!text) return { text: text ?? '', counts };
  const replace = (s: string, re: RegExp, kind: keyof AnonymizationCounts, by: string | ((...m: string[]) => string)) =>
    s.replace(re, (...m: string[]) => {
      counts[kind]++;
      return typeof by === 'string' ? by : by(...m);
    });
  const everywhere = (s: string) => {
    let out = replace(s, TOKEN_SHAPES, 'tokens', '[token]');
    out = replace(out, SECRET_ASSIGNMENT, 'tokens', (_all, name) => `${name}[token]`);
    out = replace(out, EMAIL, 'emails', '[email]');
    out = replace(out, HOME_PATH, 'home_paths', '~');
    out = replace(out, IPV4, 'ips', '[ip]');
    return replace(out, IPV6, 'ips', '[ip]');
  };
  const proseOnly = (s: string) => {
    let out = replace(s, MARKDOWN_IMAGE, 'images', '[image]');
    out = replace(out, HTML_IMAGE, 'images', '[image]');
    out = replace(out, IMAGE_URL, 'images', '[image]');
    out = out.replace(USER_URL, (all, login: string) => {
      if (GITHUB_PATHS_NOT_USERS.has(login.toLowerCase())) return all;
      counts.user_urls++;
      return '[user profile]';
    });
    // Unfenced decorator lines are kept whole: hide them from the mention pass.
    const kept: string[] = [];
    out = out.replace(DECORATOR_LINE, (line) => `\u0001${kept.push(line) - 1}\u0002`);
    out = out.replace(MENTION, (all, login: string) => {
      if (DECORATOR_NAMES.has(login.toLowerCase())) return all;
      counts.mentions++;
      return '@[user]';
    });
    return out.replace(/\u0001(\d+)\u0002/g, (_all, i: string) => kept[Number(i)]);
  };
  const out = splitCode(text).map((seg) => (seg.code ? everywhere(seg.text) : everywhere(proseOnly(seg.text)))).join('');
  return { text: out, counts };
}
