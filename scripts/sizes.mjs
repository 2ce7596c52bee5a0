// Prints the gzip size of each shipped file of pkg/ and their total; with --json,
// prints them as JSON for tests and benchmarks.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

export const shipped = ['evbuf_bg.wasm', 'evbuf.js', 'index.js'];

export function sizes(dir = new URL('../pkg/', import.meta.url), names = shipped) {
  const files = names.map((name) => {
    const bytes = readFileSync(new URL(name, dir));
    return { name, bytes: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
  });
  return { files, totalGzip: files.reduce((sum, f) => sum + f.gzip, 0) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = sizes();
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify(result));
  } else {
    for (const f of result.files) console.log(`pkg/${f.name.padEnd(14)} ${String(f.bytes).padStart(7)} B  ${String(f.gzip).padStart(6)} B gzip`);
    console.log(`shipped total (gzip -9): ${result.totalGzip} B`);
  }
}
