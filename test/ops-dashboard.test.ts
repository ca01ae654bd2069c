import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { METRIC_NAMES, PerfmineMetrics } from '../src/ops/metrics.js';

/** perfmine metric names an expression uses (histogram series reduced to their metric). */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\bperfmine_[a-z_]+/g)].map(([name]) => {
    const base = name.replace(/_(bucket|sum|count)$/, '');
    return base !== name && (METRIC_NAMES as readonly string[]).includes(base) ? base : name;
  });
}

type Rule = { alert: string; expr: string; for?: string; labels: { severity: string }; annotations: { summary: string } };

/**
 * The rule file's groups: parsed with the `yaml` package when it is installed
 * (it comes with the toolchain, not as a dependency of ours); otherwise read
 * with a small line-based reader that knows this file's layout.
 */
async function readRules(text: string): Promise<{ groups: Array<{ name: string; rules: Rule[] }> }> {
  try {
    const { parse } = await import('yaml');
    return parse(text);
  } catch {
    const rules: Rule[] = [];
    for (const chunk of text.split(/^\s*- alert: /m).slice(1)) {
      const field = (k: string) => new RegExp(`^\\s*${k}: *(.*)$`, 'm').exec(chunk)?.[1]?.replace(/^"|"$/g, '');
      const expr = /expr: *\|?\n?([\s\S]*?)\n\s*(for|labels):/.exec(chunk)?.[1].trim() ?? '';
      rules.push({ alert: chunk.split('\n')[0].trim(), expr, for: field('for'), labels: { severity: field('severity') ?? '' }, annotations: { summary: field('summary') ?? '' } });
    }
    return { groups: [{ name: /- name: (\S+)/.exec(text)?.[1] ?? '', rules }] };
  }
}

describe('the Grafana dashboard and the Prometheus alert rules', () => {
  it('METRIC_NAMES is exactly what the registry exports', async () => {
    const metrics = new PerfmineMetrics();
    const exported = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => n.startsWith('perfmine_'));
    expect(exported.sort()).toEqual([...METRIC_NAMES].sort());
  });

  it('the dashboard is importable JSON whose every query uses metrics perfmine exports', () => {
    const dash = JSON.parse(readFileSync('ops/grafana/perfmine-dashboard.json', 'utf8'));
    expect(dash.__inputs[0]).toMatchObject({ name: 'DS_PROMETHEUS', pluginId: 'prometheus' });
    const panels = dash.panels.filter((p: { type: string }) => p.type !== 'row');
    const titles = panels.map((p: { title: string }) => p.title.toLowerCase()).join(' | ');
    for (const topic of ['funnel', 'completions', 'failed', 'quota', 'llm tokens']) expect(titles).toContain(topic);
    const exprs: string[] = panels.flatMap((p: { targets: Array<{ expr: string }> }) => p.targets.map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(15);
    const used = new Set(exprs.flatMap(metricsIn));
    for (const name of used) expect(METRIC_NAMES, `dashboard uses ${name}`).toContain(name);
    expect(used.size).toBeGreaterThan(15);
    const ids = panels.map((p: { id: number }) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('the alert rules parse as Prometheus rule groups and use only metrics perfmine exports', async () => {
    const rules = await readRules(readFileSync('ops/prometheus/perfmine-alerts.yml', 'utf8'));
    expect(Array.isArray(rules.groups)).toBe(true);
    const all = rules.groups.flatMap((g) => {
      expect(g.name).toBeTruthy();
      return g.rules;
    });
    for (const r of all) {
      expect(r.alert).toMatch(/^Perfmine[A-Za-z]+$/);
      expect(typeof r.expr).toBe('string');
      expect(r.for ?? '0m').toMatch(/^\d+[smh]$/);
      expect(['info', 'warning', 'critical']).toContain(r.labels.severity);
      expect(r.annotations.summary).toBeTruthy();
      for (const name of metricsIn(r.expr)) expect(METRIC_NAMES, `${r.alert} uses ${name}`).toContain(name);
      // Balanced parentheses and braces: a cheap check that the expression is not cut short.
      for (const [open, close] of [['(', ')'], ['{', '}']]) expect(r.expr.split(open).length).toBe(r.expr.split(close).length);
    }
    const names = all.map((r) => r.alert);
    for (const needed of ['PerfmineFailedRowsGrowing', 'PerfmineStageStalled', 'PerfmineBreakerOpenLong', 'PerfmineDaemonDown']) expect(names).toContain(needed);
    expect(all.find((r) => r.alert === 'PerfmineStageStalled')!.for).toBe('30m');
  });
});
