// What docs/testing.md shows: evbuf replaced by mocks, so that a test asserts what the
// app logged.
import { afterEach, expect, test, vi } from 'vitest';
import { logEvent } from 'evbuf';
import { checkout } from './checkout.js';

vi.mock('evbuf', () => ({
  init: vi.fn(async () => {}),
  logEvent: vi.fn(async () => {}),
  flush: vi.fn(async () => {}),
  shutdown: vi.fn(async () => {}),
  optOut: vi.fn(async () => {}),
  stats: vi.fn(() => ({ started: false, waitingCalls: 0, droppedWaiting: 0, optedOut: false })),
}));

afterEach(() => vi.clearAllMocks());

test('checkout logs one event with the total and the number of items', () => {
  expect(checkout({ total: 42, items: ['a', 'b'] })).toBe('paid');
  expect(logEvent).toHaveBeenCalledTimes(1);
  expect(logEvent).toHaveBeenCalledWith({ type: 'checkout', total: 42, items: 2 });
});

test('each checkout logs its own event', () => {
  checkout({ total: 1, items: ['a'] });
  checkout({ total: 0, items: [] });
  expect(vi.mocked(logEvent).mock.calls.map(([event]) => event.total)).toEqual([1, 0]);
});
