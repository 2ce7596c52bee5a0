// Renames the JS functions a wasm module imports to short names, in the module and in its
// JS glue alike: wasm-bindgen names each one `__wbg_<name>_<16 hex digits>`, and those
// hashes, once in the wasm and once in the glue, are noise gzip cannot compress.
// Usage: node scripts/short-imports.mjs OUT_DIR NAME (rewrites OUT_DIR/NAME_bg.wasm and
// OUT_DIR/NAME.js in place). Only the names change: the glue's import object keeps its
// shape, and the module's exports are not touched.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function readU32(bytes, pos) {
  let result = 0; let shift = 0; let b;
  do {
    b = bytes[pos++];
    result += (b & 0x7f) * 2 ** shift;
    shift += 7;
  } while (b & 0x80);
  return [result, pos];
}

function u32(n) {
  const out = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

/** The n-th short name: a, b, …, z, A, …, Z, aa, ab, … (never a JS keyword: no two-letter
 *  one is, and `do`, `if`, `in` are skipped). */
function shortName(n) {
  const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
  for (;;) {
    let s = '';
    let k = n;
    do {
      s = letters[k % 52] + s;
      k = Math.floor(k / 52) - 1;
    } while (k >= 0);
    if (!['do', 'if', 'in'].includes(s)) return s;
    n += 1_000_000; // a name far out of the way
  }
}

export function shortenImports(wasm, glue) {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  let pos = 8;
  while (pos < wasm.length) {
    const id = wasm[pos];
    const [size, start] = readU32(wasm, pos + 1);
    if (id !== 2) {
      pos = start + size;
      continue;
    }
    const renamed = new Map();
    const out = [];
    let [count, p] = readU32(wasm, start);
    out.push(...u32(count));
    for (let i = 0; i < count; i++) {
      let len;
      [len, p] = readU32(wasm, p);
      const module = wasm.subarray(p, p + len);
      p += len;
      [len, p] = readU32(wasm, p);
      const field = dec.decode(wasm.subarray(p, p + len));
      p += len;
      const kindStart = p;
      const kind = wasm[p++];
      if (kind === 0) [, p] = readU32(wasm, p);
      else if (kind === 1) { p++; const flags = wasm[p++]; [, p] = readU32(wasm, p); if (flags & 1) [, p] = readU32(wasm, p); }
      else if (kind === 2) { const flags = wasm[p++]; [, p] = readU32(wasm, p); if (flags & 1) [, p] = readU32(wasm, p); }
      else if (kind === 3) p += 2;
      else throw new Error(`unknown import kind ${kind}`);
      if (!renamed.has(field)) renamed.set(field, shortName(renamed.size));
      const name = enc.encode(renamed.get(field));
      out.push(...u32(module.length), ...module, ...u32(name.length), ...name, ...wasm.subarray(kindStart, p));
    }
    const section = [2, ...u32(out.length), ...out];
    const result = new Uint8Array(pos + section.length + (wasm.length - (start + size)));
    result.set(wasm.subarray(0, pos), 0);
    result.set(section, pos);
    result.set(wasm.subarray(start + size), pos + section.length);
    // Each import is a key of the glue's import object, written as `name:` (minified).
    let js = glue;
    for (const [from, to] of renamed) {
      const key = new RegExp(`(?<![\\w$])${from.replace(/\$/g, '\\$')}(?=\\s*:)`, 'g');
      const hits = js.match(key)?.length ?? 0;
      if (hits !== 1) throw new Error(`import ${from}: ${hits} keys in the glue, expected 1`);
      js = js.replace(key, to);
      if (js.includes(from)) throw new Error(`import ${from}: named elsewhere in the glue too`);
    }
    return { wasm: result, glue: js, renamed: renamed.size };
  }
  return { wasm, glue, renamed: 0 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [dir, name] = process.argv.slice(2);
  const wasmPath = join(dir, `${name}_bg.wasm`);
  const gluePath = join(dir, `${name}.js`);
  const { wasm, glue } = shortenImports(readFileSync(wasmPath), readFileSync(gluePath, 'utf8'));
  writeFileSync(wasmPath, wasm);
  writeFileSync(gluePath, glue);
}
