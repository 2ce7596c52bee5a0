import { useEffect } from 'react';
import { logEvent } from 'evbuf'; // was: import { logEvent } from './legacy/analytics';

export default function AdBanner() {
  useEffect(() => {
    logEvent({ type: 'VIEW', screen: 'AdBanner' });
  }, []);

  return (
    <button className="banner" onClick={() => logEvent({ type: 'CLICK', screen: 'AdBanner' })}>
      <strong>Spring sale</strong>
      <span>Click me: each click is one CLICK event</span>
    </button>
  );
}
