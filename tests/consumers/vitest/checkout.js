// App code as it calls evbuf: the legacy call, not awaited.
import { logEvent } from 'evbuf';

export function checkout(cart) {
  logEvent({ type: 'checkout', total: cart.total, items: cart.items.length });
  return cart.total > 0 ? 'paid' : 'empty';
}
