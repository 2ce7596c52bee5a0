import { useEffect, useState } from 'react';
import { stats } from 'evbuf';

const ROWS = [
  ['logged', 'Logged'],
  ['queued', 'Queued'],
  ['inFlight', 'In flight'],
  ['acknowledged', 'Delivered'],
  ['retries', 'Retries'],
  ['requests', 'Requests'],
  ['mode', 'Mode'],
  ['sender', 'Sending tab'],
  ['online', 'Online'],
];

export default function StatsPanel() {
  const [current, setCurrent] = useState(stats);
  useEffect(() => {
    const timer = setInterval(() => setCurrent(stats()), 250);
    return () => clearInterval(timer);
  }, []);

  return (
    <aside className="stats">
      <h2>evbuf stats</h2>
      {current.started === false ? (
        <p>starting… ({current.waitingCalls} calls waiting)</p>
      ) : (
        <dl>
          {ROWS.map(([key, label]) => (
            <div key={key}>
              <dt>{label}</dt>
              <dd data-stat={key}>{String(current[key])}</dd>
            </div>
          ))}
        </dl>
      )}
    </aside>
  );
}
