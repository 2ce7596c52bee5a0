// Where the bytes of a wasm module go: a minimal section parser (no dependencies) that
// reads each section's size, every defined function's body size (code section) and the
// function names of the custom "name" section (subsection 1), then rolls them up per
// function and per crate. Only wasm-bindgen's output still has names: wasm-opt strips
// them, so `analyzeBuild()` runs wasm-bindgen on the cargo output into a temporary dir.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));

class Reader {
  constructor(bytes, pos = 0, end = bytes.length) {
    this.bytes = bytes; this.pos = pos; this.end = end;
  }
  byte() {
    if (this.pos >= this.end) throw new Error('wasm: unexpected end');
    return this.bytes[this.pos++];
  }
  u32() { // unsigned LEB128
    let result = 0; let shift = 0; let b;
    do {
      b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return result;
  }
  name() {
    const len = this.u32();
    const s = Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.pos, len).toString('utf8');
    this.pos += len;
    return s;
  }
  skipLimits() { const flags = this.byte(); this.u32(); if (flags & 1) this.u32(); }
}

const SECTION_NAMES = ['custom', 'type', 'import', 'function', 'table', 'memory', 'global',
  'export', 'start', 'element', 'code', 'data', 'datacount', 'tag'];

/** Parses `bytes` (a wasm module): sections, imported function count, function bodies, names. */
export function parseWasm(bytes) {
  if (bytes.length < 8 || bytes.readUInt32LE(0) !== 0x6d736100) throw new Error('not a wasm module');
  const r = new Reader(bytes, 8);
  const sections = [];
  let importedFunctions = 0;
  const bodies = []; // size in bytes of each defined function's body, incl. its size prefix
  const names = new Map(); // function index -> name
  while (r.pos < r.end) {
    const id = r.byte();
    const size = r.u32();
    const start = r.pos;
    const end = start + size;
    const section = { id, name: SECTION_NAMES[id] ?? `unknown-${id}`, size: end - start };
    if (id === 0) {
      const s = new Reader(bytes, start, end);
      section.name = `custom:${s.name()}`;
      if (section.name === 'custom:name') readNames(s, names);
    } else if (id === 2) {
      const s = new Reader(bytes, start, end);
      const count = s.u32();
      for (let i = 0; i < count; i++) {
        s.name(); s.name();
        const kind = s.byte();
        if (kind === 0) { s.u32(); importedFunctions++; } // function: type index
        else if (kind === 1) { s.byte(); s.skipLimits(); } // table
        else if (kind === 2) { s.skipLimits(); } // memory
        else if (kind === 3) { s.byte(); s.byte(); } // global: valtype, mut
        else if (kind === 4) { s.byte(); s.u32(); } // tag
        else throw new Error(`wasm: unknown import kind ${kind}`);
      }
    } else if (id === 10) {
      const s = new Reader(bytes, start, end);
      const count = s.u32();
      for (let i = 0; i < count; i++) {
        const at = s.pos;
        const bodySize = s.u32();
        s.pos += bodySize;
        bodies.push(s.pos - at);
      }
    }
    sections.push(section);
    r.pos = end;
  }
  return { size: bytes.length, sections, importedFunctions, bodies, names };
}

function readNames(s, names) {
  while (s.pos < s.end) {
    const sub = s.byte();
    const size = s.u32();
    const end = s.pos + size;
    if (sub === 1) {
      const count = s.u32();
      for (let i = 0; i < count; i++) {
        const index = s.u32();
        names.set(index, s.name());
      }
    }
    s.pos = end;
  }
}

// --- Rust symbol names -------------------------------------------------------------

const LEGACY_ESCAPES = { SP: '@', BP: '*', RF: '&', LT: '<', GT: '>', LP: '(', RP: ')', C: ',' };

/**
 * A readable Rust path: demangles a legacy symbol (`_ZN...E`) and drops the hash suffix
 * (`::h0123456789abcdef`) and crate disambiguators (`core[c5930c85a12de822]`) that
 * wasm-bindgen's already demangled names carry. Other names are returned as they are.
 */
export function demangle(sym) {
  const m = /^_?_ZN(.*)E$/.exec(sym);
  if (!m) return sym.replace(/::h[0-9a-f]{16}$/, '').replace(/\[[0-9a-f]{8,16}\]/g, '');
  const r = m[1];
  const parts = [];
  let i = 0;
  while (i < r.length) {
    const digits = /^\d+/.exec(r.slice(i));
    if (!digits) return sym;
    const len = Number(digits[0]);
    i += digits[0].length;
    parts.push(r.slice(i, i + len));
    i += len;
  }
  if (parts.length > 1 && /^h[0-9a-f]{16}$/.test(parts.at(-1))) parts.pop();
  return parts.map((p) => {
    let s = p.startsWith('_$') ? p.slice(1) : p;
    s = s.replace(/\$([A-Z]{1,2}|u[0-9a-f]+)\$/g, (all, code) => {
      if (code[0] === 'u' && code.length > 1) return String.fromCodePoint(parseInt(code.slice(1), 16));
      return LEGACY_ESCAPES[code] ?? all;
    });
    return s.replace(/\.\./g, '::');
  }).join('::');
}

const STD = new Set(['core', 'alloc', 'std']);

/**
 * The crate a function is charged to: its path's first segment. For `<A as B>::f` the
 * crates of A and B are both candidates and the first one that is not core/alloc/std
 * wins (so `<evbuf::X as core::fmt::Debug>::fmt` is evbuf's, `<alloc::Vec<T> as
 * serde::Serialize>` serde's). Names that are not Rust paths (wasm-bindgen shims,
 * `__wbindgen_*`, `dlmalloc`, C symbols) get a bucket of their own.
 */
export function crateOf(name) {
  if (/^<(char|str|bool|[iuf](8|16|32|64|128|size))>::/.test(name)) return 'core'; // inherent impls of primitives
  if (name.startsWith('__rustc::')) return 'std'; // the allocator shims
  const crates = [...name.matchAll(/(?:^|[<\s(&*,;\[])(?:dyn |mut |const )*([a-z_][a-z0-9_]*)::/g)].map((m) => m[1]);
  if (crates.length === 0) {
    if (/^(__wbg|__wbindgen|__externref|__wbgtest)|^Closure\(| shim$/.test(name)) return '(wasm-bindgen glue)';
    if (/^[A-Za-z_]\w*$/.test(name) && !/^(mem|__)/.test(name)) return '(wasm exports)';
    if (/^(__rust|rust_|__rdl|__rg)/.test(name)) return 'std';
    if (/^(memcpy|memmove|memset|memcmp|bcmp|__[a-z0-9]+[sd]f[23]|__multi3|__udivti3|__umodti3|__divti3|__ashlti3|__lshrti3)$/.test(name)) return 'compiler_builtins';
    if (/^f\d+$|^func\d+$|^\$?\d+$/.test(name)) return '(unnamed)';
    return `(other)`;
  }
  return crates.find((c) => !STD.has(c)) ?? crates[0];
}

/** Top functions by body size and per-crate sums, from `parseWasm()`'s result. */
export function rollup(parsed, top = 20) {
  const codeTotal = parsed.bodies.reduce((a, b) => a + b, 0);
  const functions = parsed.bodies.map((size, i) => {
    const index = parsed.importedFunctions + i;
    const raw = parsed.names.get(index) ?? `func${index}`;
    const name = demangle(raw);
    return { index, name, size, crate: crateOf(name) };
  });
  functions.sort((a, b) => b.size - a.size);
  const crates = new Map();
  for (const f of functions) {
    const c = crates.get(f.crate) ?? { crate: f.crate, functions: 0, size: 0 };
    c.functions++; c.size += f.size;
    crates.set(f.crate, c);
  }
  // One level below the crate (`alloc::collections`, `evbuf::web`): shows which parts
  // of a crate, e.g. which generic collections, are instantiated and at what cost.
  const modules = new Map();
  for (const f of functions) {
    const path = f.name.replace(/^<(?:impl )?/, '').split(/[<>\s]/)[0].split('::');
    const key = path.length > 2 ? `${path[0]}::${path[1]}` : f.crate;
    const m = modules.get(key) ?? { module: key, functions: 0, size: 0 };
    m.functions++; m.size += f.size;
    modules.set(key, m);
  }
  const share = (n) => Math.round((n / codeTotal) * 10000) / 100;
  return {
    codeTotal,
    functionCount: functions.length,
    named: functions.filter((f) => parsed.names.has(f.index)).length,
    top: functions.slice(0, top).map((f) => ({ ...f, shareOfCode: share(f.size) })),
    crates: [...crates.values()].sort((a, b) => b.size - a.size).map((c) => ({ ...c, shareOfCode: share(c.size) })),
    modules: [...modules.values()].sort((a, b) => b.size - a.size).slice(0, top).map((m) => ({ ...m, shareOfCode: share(m.size) })),
  };
}

function sectionSummary(parsed) {
  const sum = new Map();
  for (const s of parsed.sections) sum.set(s.name, (sum.get(s.name) ?? 0) + s.size);
  return Object.fromEntries([...sum].sort((a, b) => b[1] - a[1]));
}

/**
 * Runs wasm-bindgen on the cargo build output (names intact) into a temporary directory
 * and analyses its evbuf_bg.wasm; also gives the section sizes of the shipped pkg/ wasm and
 * whether scripts/bindgen.sh makes of that input byte for byte pkg/evbuf_bg.wasm.
 */
export function analyzeBuild({ top = 20, name = 'evbuf', shippedWasm = join(root, 'pkg/evbuf_bg.wasm') } = {}) {
  // What scripts/bindgen.sh gives wasm-bindgen: the cargo output without reference types.
  const input = join(root, `target/${name}-for-bindgen.wasm`);
  const dir = mkdtempSync(join(tmpdir(), 'evbuf-names-'));
  try {
    const bindgen = process.env.WASM_BINDGEN || join(homedir(), '.cargo/bin/wasm-bindgen');
    execFileSync(bindgen, ['--target', 'web', '--encode-into', 'always', '--out-dir', dir, '--out-name', name, input], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, PATH: `${join(homedir(), '.cargo/bin')}:${process.env.PATH}` },
    });
    const bytes = readFileSync(join(dir, `${name}_bg.wasm`));
    const parsed = parseWasm(bytes);
    const shippedBytes = readFileSync(shippedWasm);
    const shipped = parseWasm(shippedBytes);
    // Is this the build that pkg/ ships? Redo scripts/bindgen.sh on the same input into a
    // directory of its own and compare bytes.
    let matchesShipped = null;
    if (existsSync(join(root, 'node_modules/.bin/wasm-opt'))) {
      const opt = join(dir, 'opt');
      execFileSync('bash', [join(root, 'scripts/bindgen.sh'), input, opt, name], { stdio: ['ignore', 'ignore', 'pipe'] });
      matchesShipped = readFileSync(join(opt, `${name}_bg.wasm`)).equals(shippedBytes);
    }
    return {
      matchesShipped,
      beforeWasmOpt: { bytes: parsed.size, sections: sectionSummary(parsed), importedFunctions: parsed.importedFunctions },
      shippedWasm: { bytes: shipped.size, sections: sectionSummary(shipped) },
      ...rollup(parsed, top),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const a = analyzeBuild();
  console.log(JSON.stringify({ ...a, crates: a.crates.slice(0, 30) }, null, 2));
}
