// Writes gzip and brotli siblings (`x.js.gz`, `x.js.br`) of the built text
// files, so the server sends precompressed bytes chosen by Accept-Encoding.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const outDir = process.env.SKEIN_UI_OUT_DIR ?? 'dist';
const TEXT = /\.(html|js|css|svg|json|txt|map)$/;
const MIN_BYTES = 1024;

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else yield path;
  }
}

for (const path of files(outDir)) {
  if (!TEXT.test(path)) continue;
  const body = readFileSync(path);
  if (body.length < MIN_BYTES) continue;
  const gz = gzipSync(body, { level: 9 });
  const br = brotliCompressSync(body, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length },
  });
  // Keep a variant only when it actually saves bytes.
  if (gz.length < body.length) writeFileSync(`${path}.gz`, gz);
  if (br.length < body.length) writeFileSync(`${path}.br`, br);
}
