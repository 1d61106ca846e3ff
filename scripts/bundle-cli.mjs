/**
 * Bundles the command line (src/cli/main.ts) into dist/cli/main.js and its chunks in dist/bin/,
 * over the file tsc wrote there. Why: Node 20 spends most of a quiet rerun's start-up resolving,
 * reading and linking a few hundred module files (imapflow and its MIME libraries alone are
 * ~0.4 s of CPU); one entry with a few chunks, the commands still loaded lazily, starts in about
 * two thirds of that. The library entry (dist/index.js) stays unbundled.
 *
 * Kept out of the bundle: better-sqlite3 (a native addon found by its package path) and
 * pg-native (pg's optional native driver). The chunks sit one level under dist/ like the
 * modules tsc writes, so paths taken from import.meta.url (docs/errors.md, the console's web
 * folder) resolve the same.
 */
import { build } from 'esbuild';
import { chmod, rm } from 'node:fs/promises';
import { URL } from 'node:url';

await rm(new URL('../dist/bin/', import.meta.url), { recursive: true, force: true });
await build({
  entryPoints: ['src/cli/main.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  splitting: true,
  outdir: 'dist',
  entryNames: 'cli/[name]',
  chunkNames: 'bin/[name]-[hash]',
  external: ['better-sqlite3', 'pg-native'],
  // CommonJS dependencies call require() for Node's own modules; an ES module has none.
  banner: { js: "import { createRequire as __mmCreateRequire } from 'node:module'; const require = __mmCreateRequire(import.meta.url);" },
  allowOverwrite: true,
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: true,
  logLevel: 'warning',
});
await chmod('dist/cli/main.js', 0o755);
