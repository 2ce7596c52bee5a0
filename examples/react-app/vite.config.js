import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  plugins: [react()],
  // evbuf's glue loads its .wasm with `new URL('evbuf_bg.wasm', import.meta.url)`, which
  // Vite turns into an emitted asset at build time. Keep the dev server from pre-bundling
  // the package so that URL still points next to the glue.
  optimizeDeps: { exclude: ['evbuf'] },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
