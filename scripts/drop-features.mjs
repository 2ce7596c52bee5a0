// Removes features from a wasm module's target_features section:
//   node scripts/drop-features.mjs IN OUT FEATURE...
// The linker lists reference-types because Rust's precompiled std was built with it, even
// when evbuf's own code is built without; wasm-bindgen reads the list to choose its
// externref table, and wasm-opt to choose what it may emit.
import { readFileSync, writeFileSync } from 'node:fs';

function leb(bytes, at) {
  let value = 0;
  for (let shift = 0; ; shift += 7) {
    const b = bytes[at++];
    value += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return [value, at];
  }
}

function toLeb(value) {
  const out = [];
  do {
    const b = value & 0x7f;
    value >>>= 7;
    out.push(value ? b | 0x80 : b);
  } while (value);
  return out;
}

const name = (text) => [...toLeb(Buffer.byteLength(text)), ...Buffer.from(text)];

export function dropFeatures(module, drop) {
  const parts = [module.subarray(0, 8)];
  const dropped = [];
  for (let at = 8; at < module.length;) {
    const start = at;
    const id = module[at++];
    let size;
    [size, at] = leb(module, at);
    const end = at + size;
    const [nameLength, nameAt] = leb(module, at);
    if (id !== 0 || module.toString('utf8', nameAt, nameAt + nameLength) !== 'target_features') {
      parts.push(module.subarray(start, end));
      at = end;
      continue;
    }
    let [count, p] = leb(module, nameAt + nameLength);
    const kept = [];
    for (; count > 0; count--) {
      const prefix = module[p++];
      let length;
      [length, p] = leb(module, p);
      const feature = module.toString('utf8', p, p + length);
      p += length;
      if (drop.includes(feature)) dropped.push(feature);
      else kept.push([prefix, ...name(feature)]);
    }
    const payload = [...name('target_features'), ...toLeb(kept.length), ...kept.flat()];
    parts.push(Buffer.from([0, ...toLeb(payload.length), ...payload]));
    at = end;
  }
  return { module: Buffer.concat(parts), dropped };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [input, output, ...drop] = process.argv.slice(2);
  const result = dropFeatures(readFileSync(input), drop);
  writeFileSync(output, result.module);
  console.log(`dropped from target_features: ${result.dropped.join(', ') || 'none'}`);
}
