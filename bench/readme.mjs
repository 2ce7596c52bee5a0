// `npm run readme`: writes the measured figures of the docs from the committed results, so
// every figure there traces to a file:
//   - the size line (README.md), the performance and size tables (docs/performance.md), from
//     bench/results.json (`npm run bench`)
//   - the scenario tables (CONTRIBUTING.md), from bench/figures/<file>.json (`npm run
//     figures`, which runs the delivery scenarios with EVBUF_FIGURES=bench/figures)
// Each goes between `<!-- figures:<name> -->` and `<!-- /figures:<name> -->`, in whichever of
// `files` holds those markers.
// `--check` changes nothing and fails when
//   - a file is not what the results give;
//   - the prose of README.md or docs/performance.md (outside the generated blocks and code)
//     states a measured figure: a number with a unit of size, time, ratio or rate that is
//     not one of the design constants in `constants`;
//   - a relative link in README.md, CONTRIBUTING.md, ARCHITECTURE.md or docs/*.md points to
//     a file or heading that does not exist.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';

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

// One line for the README's first screen.
function summary() {
  const { size: s } = read('bench/results.json');
  return `**Size:** ${(s.shipped.totalGzip / 1024).toFixed(1)} KiB gzip as shipped (wasm, glue and entry): ` +
    'see [the size table](docs/performance.md#size).';
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
  summary,
  performance,
  size,
  scenarios: () => scenarios('scenarios'),
  delivery: () => scenarios('delivery'),
};

// Each section lives in one of these files.
const files = ['README.md', 'docs/performance.md', 'CONTRIBUTING.md'].map((name) => {
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

// The lines of a markdown file outside fenced code and generated blocks, with inline code
// blanked out, as [line number, text].
function prose(text) {
  const out = [];
  let fenced = false;
  let generated = false;
  text.split('\n').forEach((line, i) => {
    if (/^\s*```/.test(line)) fenced = !fenced;
    else if (/^<!-- figures:/.test(line)) generated = true;
    else if (/^<!-- \/figures:/.test(line)) generated = false;
    else if (!fenced && !generated) out.push([i + 1, line.replace(/`[^`]*`/g, (m) => ' '.repeat(m.length))]);
  });
  return out;
}

// Prose states no measured figure: those live in the generated tables. A number followed by
// one of these units is a figure unless it is a design constant listed here.
const figure = /(?<![\w.,])(\d[\d,]*(?:\.\d+)?)\s?(KiB|MiB|KB|MB|B|ms|µs|s|×|%|req\/s|requests\/s|events\/s|puts\/s)(?![\w/])/g;
const constants = new Set([
  '64 KiB', // the keepalive budget of a page (the cap of maxBatchBytes)
  '8 MiB', // maxStoredBytes
  '3 s', // flushIntervalMs
  '30 s', // sendTimeoutMs
  '100 ms', // the least sendTimeoutMs
]);
const proseChecked = ['README.md', 'docs/performance.md'];

function proseFigures() {
  const problems = [];
  for (const f of files.filter((f) => proseChecked.includes(f.name))) {
    for (const [n, line] of prose(f.after)) {
      for (const [, number, unit] of line.matchAll(figure)) {
        const stated = `${number} ${unit}`.replace(/ (×|%)$/, '$1');
        if (!constants.has(stated) && !constants.has(`${number} ${unit}`)) {
          problems.push(`${f.name}:${n}: the prose states the figure "${stated}": measured figures belong in a generated table (bench/readme.mjs), design constants in its \`constants\``);
        }
      }
    }
  }
  return problems;
}

// GitHub's anchor for a heading.
const anchor = (heading) => heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replaceAll(' ', '-');

function links() {
  const docs = readdirSync(new URL('docs/', root)).filter((n) => n.endsWith('.md')).map((n) => `docs/${n}`);
  const texts = new Map(files.map((f) => [f.name, f.after]));
  const text = (name) => texts.get(name) ?? readFileSync(new URL(name, root), 'utf8');
  const anchors = (name) => new Set(text(name).split('\n').filter((l) => /^#{1,6} /.test(l)).map((l) => anchor(l.replace(/^#+ /, ''))));
  const problems = [];
  for (const name of ['README.md', 'CONTRIBUTING.md', 'ARCHITECTURE.md', ...docs]) {
    for (const [n, line] of prose(text(name).replace(/^<!-- (\/)?figures:.*$/gm, ''))) {
      for (const [, target] of line.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target)) continue;
        const [path, hash] = target.split('#');
        const file = path ? new URL(path, new URL(name, root)).pathname.slice(new URL(root).pathname.length) : name;
        if (!existsSync(new URL(file, root))) problems.push(`${name}:${n}: the link ${target} points to no file`);
        else if (hash && file.endsWith('.md') && !anchors(file).has(hash)) problems.push(`${name}:${n}: the link ${target} points to no heading of ${file}`);
      }
    }
  }
  return problems;
}

const changed = files.filter((f) => f.after !== f.before);
if (process.argv.includes('--check')) {
  const problems = [
    ...changed.map((f) => `${f.name}: the figures differ from the committed results; run \`npm run readme\``),
    ...proseFigures(),
    ...links(),
  ];
  if (problems.length) {
    console.error(problems.join('\n'));
    process.exit(1);
  }
  console.log(`the figures in ${files.map((f) => f.name).join(', ')} match the committed results; no prose figure, no broken link`);
} else {
  for (const f of changed) writeFileSync(f.url, f.after);
  console.log(changed.length ? `figures written to ${changed.map((f) => f.name).join(', ')}` : 'the figures already match the committed results');
}
