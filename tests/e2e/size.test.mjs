// The shipped size may not grow past the budget in bench/size-budget.json: gzip -9 of the
// files the package ships (pkg/evbuf_bg.wasm, pkg/evbuf.js, pkg/index.js), as
// `npm run build` prints them. No browser; needs a built pkg/.
//
// The goal is 56 KiB; until it is reached the budget is the size reached, plus a few
// hundred bytes for what another toolchain release may change, so that nothing grows
// unnoticed. Lower it when the package shrinks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { sizes, shipped } from '../../scripts/sizes.mjs';

const pkg = new URL('../../pkg/', import.meta.url);
const budgetFile = new URL('../../bench/size-budget.json', import.meta.url);

test('the shipped files stay within the gzip size budget', () => {
  const missing = shipped.filter((name) => !existsSync(new URL(name, pkg)));
  assert.deepEqual(missing, [], 'pkg/ is not built: run `npm run build` first');

  const { maxShippedGzipBytes: budget } = JSON.parse(readFileSync(budgetFile, 'utf8'));
  assert.ok(Number.isInteger(budget) && budget > 0, 'bench/size-budget.json: maxShippedGzipBytes must be a positive integer');

  const { files, totalGzip } = sizes(pkg);
  const detail = files.map((f) => `${f.name} ${f.gzip} B`).join(', ');
  assert.ok(
    totalGzip <= budget,
    `shipped gzip total ${totalGzip} B exceeds the budget of ${budget} B by ${totalGzip - budget} B (${detail}); ` +
      'shrink it, or raise bench/size-budget.json deliberately',
  );
});
