// The package as a user gets it: `npm pack` of this checkout (pkg/ must be built; the
// prepack build is skipped because the tests run after one).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../../', import.meta.url));

/** Packs the package into a fresh directory; returns the tarball's path and file list. */
export function pack() {
  const dir = mkdtempSync(join(tmpdir(), 'evbuf-pack-'));
  const [info] = JSON.parse(execFileSync('npm', [
    'pack', '--ignore-scripts', '--json', '--pack-destination', dir,
  ], { cwd: root, encoding: 'utf8' }));
  return { tarball: join(dir, info.filename), files: info.files.map((f) => f.path).sort() };
}

/** Unpacks the tarball as `npm install` would into `<app>/node_modules/evbuf` (the
 *  package has no dependencies). */
export function installInto(app, tarball) {
  const dest = join(app, 'node_modules', 'evbuf');
  mkdirSync(dest, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', dest, '--strip-components=1']);
  return dest;
}
