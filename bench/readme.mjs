// `npm run readme`: writes the measured figures of README.md and CONTRIBUTING.md from the
// committed results, so every figure there traces to a file:
//   - the performance and size tables (README), from bench/results.json (`npm run bench`)
//   - the scenario tables (CONTRIBUTING), from bench/figures/<file>.json (`npm run
//     figures`, which runs the delivery scenarios with EVBUF_FIGURES=bench/figures)
// Each goes between `<!-- figures:<name> -->` and `<!-- /figures:<name> -->`.
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
  return [
    `Run of ${day(r.date)}${r.quick ? ' (--quick)' : ''} (\`bench/results.json\`): ${m.os}, ${m.cpu}, ${m.cores} cores, ` +
      `${m.chromium}, load average ${m.loadAverageAtStart.join(' ')} at the start; payload ` +
      `${r.config.payloadBytes} B; default options. "met" compares with the target in the bench.`,
    '',
    markdownTable(['metric', 'evbuf', 'baseline (same run)', 'ratio', 'target', 'met'],
      r.table.map((x) => [x.metric, x.evbuf, x.baseline, x.ratio, x.target, x['met?']])),
  ].join('\n');
}

// What ships beside the floor: the same probe-built rexie + wasm-bindgen module with no
// evbuf logic (bench/floor), and the code of each crate before wasm-opt in both.
function size() {
  const { size: s, date } = read('bench/results.json');
  const budget = read('bench/size-budget.json').maxShippedGzipBytes;
  const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
  const gz = (files, name) => files.find((f) => f.name === name)?.gzip ?? 0;
  const shipped = s.shipped.files;
  const floor = s.floor.files;
  const above = s.shipped.totalGzip - s.floor.totalGzip;
  const floorCode = new Map(s.floor.crates.map((c) => [c.crate, c.size]));
  return [
    `Run of ${day(date)} (\`bench/results.json\`), gzip -9 of what the package ships; \`npm test\` fails above the ` +
      `budget of ${budget.toLocaleString('en-US')} B (\`bench/size-budget.json\`).`,
    '',
    markdownTable(['', 'wasm', 'glue (evbuf.js)', 'entry (index.js)', 'total'], [
      ['floor: rexie + wasm-bindgen, no evbuf logic (`bench/floor`)', kib(gz(floor, 'floor_bg.wasm')), kib(gz(floor, 'floor.js')), '', kib(s.floor.totalGzip)],
      ['evbuf', kib(gz(shipped, 'evbuf_bg.wasm')), kib(gz(shipped, 'evbuf.js')), kib(gz(shipped, 'index.js')), kib(s.shipped.totalGzip)],
      ['evbuf above the floor', '', '', '', kib(above)],
    ]),
    '',
    'Code by crate before wasm-opt (bytes of function bodies; the floor built the same way):',
    '',
    markdownTable(['crate', 'evbuf', 'floor', 'above the floor'],
      s.crates.slice(0, 14).map((c) => [`\`${c.crate}\``, c.size.toLocaleString('en-US'), (floorCode.get(c.crate) ?? 0).toLocaleString('en-US'),
        (c.size - (floorCode.get(c.crate) ?? 0)).toLocaleString('en-US')])),
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
  size,
  scenarios: () => scenarios('scenarios'),
  delivery: () => scenarios('delivery'),
};

// Each section lives in one of these files.
const files = ['README.md', 'CONTRIBUTING.md'].map((name) => {
  const url = new URL(name, root);
  const text = readFileSync(url, 'utf8');
  return { name, url, before: text, after: text };
});
for (const [name, render] of Object.entries(sections)) {
  const open = `<!-- figures:${name} -->`;
  const close = `<!-- /figures:${name} -->`;
  const file = files.find((f) => f.after.includes(open));
  if (!file) throw new Error(`no file has a ${open} … ${close} section`);
  const start = file.after.indexOf(open);
  const end = file.after.indexOf(close);
  if (end < start) throw new Error(`${file.name}: ${open} is not closed by ${close}`);
  file.after = `${file.after.slice(0, start + open.length)}\n${render()}\n${file.after.slice(end)}`;
}
const changed = files.filter((f) => f.after !== f.before);
if (process.argv.includes('--check')) {
  if (changed.length) {
    console.error(`${changed.map((f) => f.name).join(', ')}: figures differ from the committed results; run \`npm run readme\``);
    process.exit(1);
  }
  console.log('the figures in the docs match the committed results');
} else {
  for (const f of changed) writeFileSync(f.url, f.after);
  console.log(changed.length ? `figures written to ${changed.map((f) => f.name).join(', ')}` : 'the figures already match the committed results');
}
