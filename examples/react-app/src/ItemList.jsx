import { useEffect } from 'react';
import { logEvent } from 'evbuf';

const ITEMS = Array.from({ length: 200 }, (_, i) => ({ id: i + 1, name: `Item ${i + 1}` }));

// Each row logs its own VIEW on mount: 200 events within one render.
function Item({ item }) {
  useEffect(() => {
    logEvent({ type: 'VIEW', screen: 'ItemList', item: item.id });
  }, [item.id]);
  return <li>{item.name}</li>;
}

export default function ItemList() {
  return (
    <ul className="items">
      {ITEMS.map((item) => <Item key={item.id} item={item} />)}
    </ul>
  );
}
