import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

// The cargo build script sets SKEIN_UI_OUT_DIR to a folder under target/;
// a plain `npm run build` writes dist/.
const outDir = process.env.SKEIN_UI_OUT_DIR ?? 'dist';

export default defineConfig({
  plugins: [react()],
  build: {
    outDir,
    emptyOutDir: true,
    // Hashed file names under assets/ are served with a one-year cache.
    assetsDir: 'assets',
    chunkSizeWarningLimit: 2000,
  },
  server: {
    // `npm run dev` against a local `skein` on the default port.
    proxy: { '/api': 'http://127.0.0.1:7300' },
  },
  test: {
    include: ['src/**/*.test.ts'],
  },
});
