import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  plugins: [react()],
  // evbuf's glue loads its .wasm with `new URL('evbuf_bg.wasm', import.meta.url)`, which
  // Vite turns into an emitted asset at build time. Keep the dev server from pre-bundling
  // the package so that URL still points next to the glue.
  optimizeDeps: { exclude: ['evbuf'] },
  server: {
    host: '127.0.0.1',
    // Only because this example links the repo's own build (`"evbuf": "file:../.."`):
    // the link resolves to ../../pkg, outside the app, and the dev server would refuse
    // the .wasm there (403). Installed from the registry, evbuf sits in node_modules
    // and needs none of this.
    fs: { allow: ['.', '../../pkg'] },
  },
  preview: { host: '127.0.0.1' },
});
