// What the real package does under jsdom, which has no IndexedDB: init() rejects with code
// 'unsupported', and the app's calls neither throw nor leave an unhandled rejection (Vitest
// fails the run on one); they wait in memory, bounded, and nothing is sent.
import { expect, test } from 'vitest';
import { flush, init, stats } from 'evbuf';
import { checkout } from './checkout.js';

test('init rejects with code unsupported; the app runs, and its call waits', async () => {
  const heard = [];
  await expect(init({ endpoint: '/bulk/event', onError: (e) => heard.push(e.code) }))
    .rejects.toMatchObject({ code: 'unsupported' });
  expect(checkout({ total: 42, items: ['a'] })).toBe('paid');
  expect(stats()).toEqual({ started: false, waitingCalls: 1, droppedWaiting: 0, optedOut: false });
  await expect(flush()).rejects.toMatchObject({ code: 'not-started' });
  expect(heard).toEqual([]);
});

test('a call refused before init reaches onError, not the test as an unhandled rejection', async () => {
  const heard = [];
  await init({ endpoint: '/bulk/event', onError: (e) => heard.push(e.code) }).catch(() => {});
  // The pending call of the test above is refused by this failed init, and reported.
  const cyclic = {};
  cyclic.self = cyclic;
  checkout({ total: cyclic, items: [] });
  await new Promise((r) => setTimeout(r, 0));
  expect(heard).toEqual(['start-failed', 'dropped']);
});
