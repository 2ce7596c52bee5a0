// Vite 7's dev server pre-bundles dependencies into node_modules/.vite/deps and loses the
// .wasm next to them; left alone, evbuf loads its module from where it is installed.
export default { optimizeDeps: { exclude: ['evbuf'] } };
