import { createRoot } from 'react-dom/client';
import { init } from 'evbuf';
import App from './App.jsx';
import './styles.css';

const endpoint = import.meta.env.VITE_EVBUF_ENDPOINT || 'http://127.0.0.1:8787/bulk/event';

// Once, at startup. logEvent() calls made before init resolves are queued, not lost,
// so the app renders right away.
init({ endpoint, onError: (error) => console.warn('[evbuf]', error.message) })
  .catch((error) => console.error('[evbuf] init failed:', error));

createRoot(document.getElementById('root')).render(<App />);
