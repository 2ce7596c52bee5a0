import { useEffect, useState } from 'react';
import AdBanner from './AdBanner.jsx';
import ItemList from './ItemList.jsx';
import StatsPanel from './StatsPanel.jsx';

// Two pages are enough for a demo: a tiny hash router instead of a routing library.
function useHash() {
  const [hash, setHash] = useState(() => window.location.hash || '#/');
  useEffect(() => {
    const onChange = () => setHash(window.location.hash || '#/');
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return hash;
}

function Home() {
  return (
    <>
      <p>
        Every <code>logEvent</code> below is a legacy call site; only its import changed.
        Events are stored in IndexedDB and sent in bulk, not one request each.
      </p>
      <AdBanner />
    </>
  );
}

export default function App() {
  const hash = useHash();
  return (
    <div className="layout">
      <header>
        <h1>evbuf + React</h1>
        <nav>
          <a href="#/" className={hash === '#/' ? 'active' : ''}>Home</a>
          <a href="#/list" className={hash === '#/list' ? 'active' : ''}>List (200 items)</a>
        </nav>
      </header>
      <main>{hash === '#/list' ? <ItemList /> : <Home />}</main>
      <StatsPanel />
    </div>
  );
}
