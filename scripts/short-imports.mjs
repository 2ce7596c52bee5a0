// Gives short names to what wasm-bindgen names with a hash, in the module and in its JS
// glue alike: each imported JS function (`__wbg_<name>_<16 hex digits>`) and each exported
// closure shim (`…__invoke__h<16 hex digits>`, with `_<n>` after it when two share a hash).
// Those hashes, once in the wasm and again in the glue, are noise gzip cannot compress.
// Usage: node scripts/short-imports.mjs OUT_DIR NAME (rewrites OUT_DIR/NAME_bg.wasm and
// OUT_DIR/NAME.js in place). Only those names change: the import object keeps its shape,
// and the API's exports keep theirs. A name not found where expected, or found anywhere
// else in the glue, fails the build.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const enc = new TextEncoder();
const dec = new TextDecoder();

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

function readName(bytes, pos) {
  const [len, start] = readU32(bytes, pos);
  return [dec.decode(bytes.subarray(start, start + len)), start + len];
}

const nameBytes = (name) => { const b = enc.encode(name); return [...u32(b.length), ...b]; };

/** The n-th short name: a, b, …, z, A, …, Z, aa, ab, … (`do`, `if` and `in`, the JS
 *  keywords among them, are skipped). */
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

/** Where an import's description ends (after its kind byte and what that kind carries). */
function skipImportDesc(wasm, p) {
  const kind = wasm[p++];
  const limits = () => { const flags = wasm[p++]; [, p] = readU32(wasm, p); if (flags & 1) [, p] = readU32(wasm, p); };
  if (kind === 0) [, p] = readU32(wasm, p); // function: type index
  else if (kind === 1) { p++; limits(); } // table: element type, limits
  else if (kind === 2) limits(); // memory
  else if (kind === 3) p += 2; // global: value type, mutability
  else throw new Error(`unknown import kind ${kind}`);
  return p;
}

/**
 * Rewrites the import (2) and export (7) sections: `rename(section, name)` returns a new
 * name or the same one. Returns the new module and every name changed.
 */
function renameEntries(wasm, rename) {
  const parts = [wasm.subarray(0, 8)];
  const renamed = new Map();
  let pos = 8;
  while (pos < wasm.length) {
    const id = wasm[pos];
    const [size, start] = readU32(wasm, pos + 1);
    const end = start + size;
    if (id !== 2 && id !== 7) {
      parts.push(wasm.subarray(pos, end));
      pos = end;
      continue;
    }
    let [count, p] = readU32(wasm, start);
    const out = [...u32(count)];
    for (let i = 0; i < count; i++) {
      let module = null;
      let name;
      if (id === 2) [module, p] = readName(wasm, p);
      [name, p] = readName(wasm, p);
      const descStart = p;
      if (id === 2) p = skipImportDesc(wasm, p);
      else { p++; [, p] = readU32(wasm, p); } // export: kind, index
      const next = renamed.get(name)?.to ?? rename(id, name);
      if (next !== name) renamed.set(name, { to: next, section: id });
      if (module !== null) out.push(...nameBytes(module));
      out.push(...nameBytes(next), ...wasm.subarray(descStart, p));
    }
    parts.push(new Uint8Array([id, ...u32(out.length), ...out]));
    pos = end;
  }
  const result = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) { result.set(part, at); at += part.length; }
  return { wasm: result, renamed };
}

export function shorten(wasm, glue) {
  let imports = 0;
  let shims = 0;
  const result = renameEntries(wasm, (section, name) => {
    if (section === 2) return shortName(imports++);
    // Exported closure shims: `_` and a letter cannot meet an API export or wasm-bindgen's.
    if (/__invoke__h[0-9a-f]{16}(_\d+)?$/.test(name)) return `_${shortName(shims++)}`;
    return name;
  });
  // An import is a key of the glue's import object (`name:` once minified); a shim is
  // read off the exports (`.name`). Each must be found, and nowhere else.
  let js = glue;
  for (const [from, { to, section }] of result.renamed) {
    const pattern = section === 2 ? `(?<![\\w$])${from}(?=\\s*:)` : `(?<=\\.)${from}(?![\\w$])`;
    const hits = js.match(new RegExp(pattern, 'g'))?.length ?? 0;
    if (section === 2 ? hits !== 1 : hits === 0) throw new Error(`${from}: ${hits} uses in the glue`);
    js = js.replace(new RegExp(pattern, 'g'), to);
    if (new RegExp(`(?<![\\w$])${from}(?![\\w$])`).test(js)) throw new Error(`${from}: named elsewhere in the glue too`);
  }
  return { wasm: result.wasm, glue: js };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [dir, name] = process.argv.slice(2);
  const wasmPath = join(dir, `${name}_bg.wasm`);
  const gluePath = join(dir, `${name}.js`);
  const { wasm, glue } = shorten(readFileSync(wasmPath), readFileSync(gluePath, 'utf8'));
  writeFileSync(wasmPath, wasm);
  writeFileSync(gluePath, glue);
}
