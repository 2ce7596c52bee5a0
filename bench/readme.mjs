// `node bench/readme.mjs`: writes the README's measured figures from the committed results,
// so every figure there traces to a file:
//   - the performance table, from bench/results.json (`npm run bench`)
//   - the scenario tables, from bench/figures/<file>.json (`npm run figures`, which runs
//     the delivery scenarios with EVBUF_FIGURES=bench/figures)
// Each goes between `<!-- figures:<name> -->` and `<!-- /figures:<name> -->` in README.md.
// `--check` changes nothing and fails when the README is not what the results give.
import { readFileSync, writeFileSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const read = (path) => JSON.parse(readFileSync(new URL(path, root), 'utf8'));
const cell = (value) => String(value ?? '').replaceAll('|', '\\|').replaceAll('\n', ' ');
const row = (values) => `| ${values.map(cell).join(' | ')} |`;
const day = (iso) => iso.slice(0, 10);

function markdownTable(columns, rows) {
  return [row(columns), row(columns.map(() => '---')), ...rows.map(row)].join('\n');
}

function performance() {
  const r = read('bench/results.json');
  const m = r.machine;
  const crates = r.size.crates
    .slice(0, 8)
    .map((c) => `\`${c.crate}\` ${c.shareOfCode.toFixed(0)}%`)
    .join(', ');
  return [
    `Run of ${day(r.date)}${r.quick ? ' (--quick)' : ''} (\`bench/results.json\`): ${m.os}, ${m.cpu}, ${m.cores} cores, ` +
      `${m.chromium}, load average ${m.loadAverageAtStart.join(' ')} at the start; payload ` +
      `${r.config.payloadBytes} B; default options. "met" compares with the target in the bench.`,
    '',
    markdownTable(['metric', 'evbuf', 'baseline (same run)', 'ratio', 'target', 'met'],
      r.table.map((x) => [x.metric, x.evbuf, x.baseline, x.ratio, x.target, x['met?']])),
    '',
    `Where the code goes (before wasm-opt, by crate): ${crates}.`,
  ].join('\n');
}

function scenarios(name) {
  const run = read(`bench/figures/${name}.json`);
  return [
    `Run of ${day(run.date)} (\`bench/figures/${name}.json\`, ${run.machine}); requests are the bulk POSTs the collector saw.`,
    '',
    markdownTable(['scenario', 'delivered', 'requests', 'wire duplicates', 'refused', 'seen'],
      run.figures.map((f) => [f.test, f.delivered, f.requests, f.duplicates, f.rejected === '{}' ? '' : f.rejected, f.notes])),
  ].join('\n');
}

const sections = {
  performance,
  scenarios: () => scenarios('scenarios'),
  delivery: () => scenarios('delivery'),
};

const readmeUrl = new URL('README.md', root);
const before = readFileSync(readmeUrl, 'utf8');
let after = before;
for (const [name, render] of Object.entries(sections)) {
  const open = `<!-- figures:${name} -->`;
  const close = `<!-- /figures:${name} -->`;
  const start = after.indexOf(open);
  const end = after.indexOf(close);
  if (start < 0 || end < start) throw new Error(`README.md has no ${open} … ${close} section`);
  after = `${after.slice(0, start + open.length)}\n${render()}\n${after.slice(end)}`;
}
if (process.argv.includes('--check')) {
  if (after !== before) {
    console.error('README.md figures differ from the committed results: run `node bench/readme.mjs`');
    process.exit(1);
  }
  console.log('README.md figures match the committed results');
} else if (after !== before) {
  writeFileSync(readmeUrl, after);
  console.log('README.md figures written from the committed results');
} else {
  console.log('README.md figures already match the committed results');
}
