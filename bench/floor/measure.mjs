// The floor of evbuf's size: this probe (src/lib.rs, no evbuf logic: rexie opening a
// database, adding, reading and deleting one record from an async wasm-bindgen export),
// built as the package is (scripts/cargo-wasm.sh: the pinned nightly, build-std, evbuf's
// release profile and target flags), through the same steps after cargo (scripts/bindgen.sh). Prints the gzip -9 sizes; with --json, as JSON for the bench, with
// the code of each crate before wasm-opt (bench/wasm-names.mjs).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sizes } from '../../scripts/sizes.mjs';
import { analyzeBuild } from '../wasm-names.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));

export function measureFloor() {
  const target = join(root, 'target/floor');
  const quiet = { stdio: ['ignore', 'ignore', 'inherit'] };
  execFileSync('bash', [join(root, 'scripts/cargo-wasm.sh'), '-q', '--target-dir', target],
    { ...quiet, cwd: join(root, 'bench/floor') });
  const out = mkdtempSync(join(tmpdir(), 'evbuf-floor-'));
  try {
    execFileSync('bash', [join(root, 'scripts/bindgen.sh'), join(target, 'wasm32-unknown-unknown/release/evbuf_floor.wasm'), out, 'floor'], quiet);
    const { crates } = analyzeBuild({ name: 'floor', shippedWasm: join(out, 'floor_bg.wasm') });
    return { ...sizes(pathToFileURL(`${out}/`), ['floor_bg.wasm', 'floor.js']), crates };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const floor = measureFloor();
  if (process.argv.includes('--json')) console.log(JSON.stringify(floor));
  else {
    for (const f of floor.files) console.log(`${f.name.padEnd(14)} ${String(f.bytes).padStart(7)} B  ${String(f.gzip).padStart(6)} B gzip`);
    console.log(`floor total (gzip -9): ${floor.totalGzip} B`);
  }
}
