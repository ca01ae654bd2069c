/**
 * The simple repository API as pip reads it: PEP 503 HTML and PEP 691 JSON
 * (with PEP 700's upload-time, size and versions), chosen by the Accept
 * header as PEP 691 describes, or by `?format=`.
 */
import type { IndexFile } from './catalog.js';

export const JSON_TYPE = 'application/vnd.pypi.simple.v1+json';
export const HTML_TYPE = 'application/vnd.pypi.simple.v1+html';

export interface RenderOptions {
  /** false: an HTML-only index (as a static PEP 503 tree). */
  json: boolean;
  /** false: JSON pages without upload-time (an index that cannot give a cutoff). */
  uploadTimes: boolean;
}

/** The format a client asked for: JSON when it prefers JSON's media type, else HTML. */
export function negotiate(accept: string | undefined, formatParam: string | null, opts: RenderOptions): 'json' | 'html' {
  if (!opts.json) return 'html';
  if (formatParam) return formatParam === JSON_TYPE ? 'json' : 'html';
  let json = -1;
  let html = -1;
  for (const part of (accept ?? '').split(',')) {
    const [type, ...params] = part.trim().split(';').map((s) => s.trim());
    const q = Number(params.find((p) => p.startsWith('q='))?.slice(2) ?? 1);
    if (type === JSON_TYPE) json = Math.max(json, q);
    else if (type === HTML_TYPE || type === 'text/html' || type === '*/*') html = Math.max(html, q);
  }
  return json > 0 && json >= html ? 'json' : 'html';
}

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function projectListHtml(projects: readonly string[]): string {
  const links = projects.map((p) => `    <a href="${escape(p)}/">${escape(p)}</a>`).join('\n');
  return `<!DOCTYPE html>\n<html>\n  <head><meta name="pypi:repository-version" content="1.1"><title>Simple index</title></head>\n  <body>\n${links}\n  </body>\n</html>\n`;
}

export function projectListJson(projects: readonly string[]): unknown {
  return { meta: { 'api-version': '1.1' }, projects: projects.map((name) => ({ name })) };
}

/** File links are relative to the project page (`/simple/NAME/`): `../../files/FILE`. */
const fileHref = (f: IndexFile) => `../../files/${encodeURIComponent(f.filename)}`;

export function projectPageHtml(project: string, files: readonly IndexFile[]): string {
  const links = files.map((f) => {
    const rp = f.requiresPython ? ` data-requires-python="${escape(f.requiresPython)}"` : '';
    const yanked = f.yanked ? ` data-yanked="${escape(typeof f.yanked === 'string' ? f.yanked : '')}"` : '';
    return `    <a href="${fileHref(f)}#sha256=${f.sha256}"${rp}${yanked}>${escape(f.filename)}</a><br/>`;
  }).join('\n');
  return `<!DOCTYPE html>\n<html>\n  <head><meta name="pypi:repository-version" content="1.1"><title>Links for ${escape(project)}</title></head>\n  <body>\n    <h1>Links for ${escape(project)}</h1>\n${links}\n  </body>\n</html>\n`;
}

export function projectPageJson(project: string, files: readonly IndexFile[], opts: RenderOptions): unknown {
  return {
    meta: { 'api-version': opts.uploadTimes ? '1.1' : '1.0' },
    name: project,
    files: files.map((f) => ({
      filename: f.filename,
      url: fileHref(f),
      hashes: { sha256: f.sha256 },
      'requires-python': f.requiresPython,
      yanked: f.yanked,
      ...(opts.uploadTimes ? { size: f.size, 'upload-time': f.uploadTime.toISOString() } : {}),
    })),
    ...(opts.uploadTimes ? { versions: [...new Set(files.map((f) => f.version))] } : {}),
  };
}
