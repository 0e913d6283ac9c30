// Writes one TypeScript file per Grafana dashboard JSON so that tsc can type-check it against
// @grafana/schema, plus deliberately broken copies ("mutants") that tsc MUST reject.
//
//   node generate.mjs OUTDIR DASHBOARD.json...
//
// Prints a manifest to stdout, one line per generated file:
//   GENERATED_TS <TAB> kind (dashboard|mutant) <TAB> label <TAB> panel count [<TAB> original's TS]
// A mutant counts as rejected only by errors its original does not have.
//
// Each JSON is emitted as an object literal initialiser of an annotated const, so literal types
// are checked contextually and misspelt keys are caught by excess-property checks. Dashboard
// types panels as Array<Panel | RowPanel>; excess-property checks against a union only flag
// keys unknown to *every* member, so each panel is additionally checked on its own against
// Panel (or RowPanel for type "row"), and each query target against DataQuery.
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const [outDir, ...inputs] = process.argv.slice(2);
if (!outDir || inputs.length === 0) {
  console.error('usage: node generate.mjs OUTDIR DASHBOARD.json...');
  process.exit(2);
}

const lit = (v) => JSON.stringify(v, null, 2);

function render(label, dash) {
  const out = [
    `// Generated from ${label} by tests/dashboards/check_schema.sh; do not edit.`,
    "import type { Dashboard, DataQuery, Panel, RowPanel, VariableModel } from '@grafana/schema';",
    '',
    // @grafana/schema renders the schema's string disjunctions (thresholds mode "absolute" |
    // "percentage", color mode, mapping type, ...) as TypeScript string enums, and a JSON string
    // is never assignable to a TS string enum. AsJson<T> replaces every string enum by the union
    // of its values (`${E}`), exactly what the JSON may contain; everything else is unchanged,
    // optionality and excess-property checks included. Numeric enums accept their numbers as is.
    'type AsJson<T> = T extends string ? (string extends T ? string : `${T}`)',
    '  : T extends readonly (infer U)[] ? AsJson<U>[]',
    '  : T extends object ? { [K in keyof T]: AsJson<T[K]> }',
    '  : T;',
    // The one addition to Grafana's v1 Dashboard type: a template variable's `definition` (the
    // query text Grafana's own variable editor writes into every query variable). It is part of
    // @grafana/schema's v2 QueryVariableSpec but missing from the v1 VariableModel.
    'type Variable = VariableModel & { definition?: string };',
    "type CheckedDashboard = AsJson<Omit<Dashboard, 'templating'> & { templating?: { list?: Variable[] } }>;",
    '',
    `export const dashboard: CheckedDashboard = ${lit(dash)};`,
  ];
  let panels = 0;
  const checkPanel = (p, name) => {
    panels++;
    out.push('', `// ${name}: ${lit(p?.title ?? '')}`);
    const type = p?.type === 'row' ? 'RowPanel' : 'Panel';
    out.push(`export const ${name}: AsJson<${type}> = ${lit(p)};`);
    if (p && Array.isArray(p.targets)) {
      p.targets.forEach((t, i) => {
        out.push(`export const ${name}_target_${i}: AsJson<DataQuery> & Record<string, unknown> = ${lit(t)};`);
      });
    }
    if (type === 'RowPanel' && Array.isArray(p.panels)) {
      p.panels.forEach((q, i) => checkPanel(q, `${name}_${i}`));
    }
  };
  (Array.isArray(dash.panels) ? dash.panels : []).forEach((p, i) => checkPanel(p, `panel_${i}`));
  return { text: out.join('\n') + '\n', panels };
}

const manifest = [];
const dashboards = [];
inputs.forEach((path, n) => {
  let dash;
  try {
    dash = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    console.error(`FAIL: ${path}: not valid JSON: ${e.message}`);
    process.exit(1);
  }
  if (dash === null || typeof dash !== 'object' || Array.isArray(dash)) {
    console.error(`FAIL: ${path}: top level is not a JSON object`);
    process.exit(1);
  }
  const gen = join(outDir, `d${n}_${basename(path, '.json').replace(/[^A-Za-z0-9_]/g, '_')}.ts`);
  const { text, panels } = render(path, dash);
  writeFileSync(gen, text);
  manifest.push([gen, 'dashboard', path, panels]);
  dashboards.push({ path, dash, gen });
});

// Mutants: each breaks the first ordinary panel of the first dashboard that has one, in a way
// Grafana's schema forbids. If tsc accepts any of them, the check is toothless.
const victim = dashboards.find(
  (d) => Array.isArray(d.dash.panels) && d.dash.panels.some((p) => p && p.type !== 'row'),
);
if (!victim) {
  console.error('FAIL: no dashboard has an ordinary (non-row) panel to build the broken copies from');
  process.exit(1);
}
const mutants = {
  'gridPos.w is a string': (p) => {
    p.gridPos = { x: 0, y: 0, h: 8, ...p.gridPos, w: String(p.gridPos?.w ?? 12) };
  },
  'targets is an object, not an array': (p) => {
    p.targets = { refId: 'A', expr: 'up' };
  },
  'thresholds mode "absolut"': (p) => {
    p.fieldConfig = { overrides: [], ...p.fieldConfig };
    p.fieldConfig.defaults = { ...p.fieldConfig.defaults };
    p.fieldConfig.defaults.thresholds = { mode: 'absolut', steps: [{ color: 'green', value: null }] };
  },
  'misspelt key "gridpos"': (p) => {
    p.gridpos = p.gridPos ?? { x: 0, y: 0, w: 12, h: 8 };
    delete p.gridPos;
  },
};
Object.entries(mutants).forEach(([what, mutate], n) => {
  const dash = structuredClone(victim.dash);
  mutate(dash.panels.find((p) => p && p.type !== 'row'));
  const label = `broken copy of ${victim.path} (${what})`;
  const gen = join(outDir, `mutant${n}.ts`);
  const { text, panels } = render(label, dash);
  writeFileSync(gen, text);
  manifest.push([gen, 'mutant', label, panels, victim.gen]);
});

process.stdout.write(manifest.map((r) => r.join('\t')).join('\n') + '\n');
