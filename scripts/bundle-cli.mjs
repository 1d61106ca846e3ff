/**
 * Bundles the command line (src/cli/main.ts) into dist/cli/main.js and its chunks in dist/bin/,
 * over the file tsc wrote there. Why: Node 20 spends most of a quiet rerun's start-up resolving,
 * reading and linking a few hundred module files (imapflow and its MIME libraries alone are
 * ~0.4 s of CPU); one entry with a few chunks, the commands still loaded lazily, starts in about
 * two thirds of that. The library entry (dist/index.js) stays unbundled.
 *
 * Kept out of the bundle: better-sqlite3 (a native addon found by its package path) and
 * pg-native (pg's optional native driver). Loaded lazily from node_modules, on first use: the
 * CommonJS packages in LAZY (see lazyPackages below). The chunks sit one level under dist/ like the
 * modules tsc writes, so paths taken from import.meta.url (docs/errors.md, the console's web
 * folder) resolve the same.
 */
import { build } from 'esbuild';
import { chmod, readFile, rm } from 'node:fs/promises';
import process from 'node:process';
import { URL } from 'node:url';

/**
 * CommonJS packages that imapflow (and the --log option) import at start-up but a copy seldom
 * or never calls: MIME word decoding and charsets (libmime, iconv-lite, encoding-japanese: only
 * for envelopes and downloads, which mailmover does not use), SOCKS proxies (socks), the log
 * writer (pino: only with a log file). Profiled on a quiet rerun: compiling and running them was
 * ~25 ms of its ~240 ms and ~4 MiB of heap. Each import of one of them gets a stand-in that
 * require()s the real package from node_modules the first time it is used; the names are the
 * package's exports that its importers use (checked by the build: an unknown name fails it).
 */
const LAZY = {
  libmime: [],
  'iconv-lite': [],
  'encoding-japanese': [],
  '@zone-eu/mailsplit': ['Headers'],
  '@zone-eu/mailsplit/lib/flowed-decoder.js': [],
  socks: ['SocksClient'],
  pino: ['pino'],
};

/** Packages of LAZY with a hand-written stand-in (a file under scripts/stand-ins/) instead of the generic one. */
const STAND_INS = { 'iconv-lite': './stand-ins/iconv-lite.mjs' };

/** The stand-in: a Proxy (callable and constructible, for pino() and classes) over the export. */
function lazyModule(name, names) {
  const lines = [
    `let real;`,
    `const load = () => (real ??= require(${JSON.stringify(name)}));`,
    `const lazy = (pick) => new Proxy(function () {}, {`,
    `  get: (_, key) => pick()[key],`,
    `  set: (_, key, value) => ((pick()[key] = value), true),`,
    `  has: (_, key) => key in pick(),`,
    `  apply: (_, self, args) => Reflect.apply(pick(), self, args),`,
    `  construct: (_, args) => Reflect.construct(pick(), args),`,
    `});`,
    `export default lazy(load);`,
    ...names.map((n) => `export const ${n} = lazy(() => load()[${JSON.stringify(n)}]);`),
  ];
  return lines.join('\n');
}

const lazyPackages = {
  name: 'lazy-packages',
  setup(b) {
    const filter = new RegExp(`^(${Object.keys(LAZY).map((n) => n.replace(/[-./]/g, '\\$&')).join('|')})$`);
    // The stand-in's own require() is left to Node at run time; so is a CommonJS require() of one
    // of them (it expects the package's own exports object, not an ES module's namespace).
    b.onResolve({ filter }, (args) => {
      if (args.namespace === 'lazy' || args.kind === 'require-call') return { path: args.path, external: true };
      return { path: args.path, namespace: 'lazy' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy' }, async (args) => {
      // iconv-lite has a stand-in of its own: modified UTF-7 without loading every charset table.
      const own = STAND_INS[args.path];
      const contents = own ? await readFile(new URL(own, import.meta.url), 'utf8') : lazyModule(args.path, LAZY[args.path]);
      return { contents, loader: 'js', resolveDir: process.cwd() };
    });
  },
};

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
  plugins: [lazyPackages],
  // CommonJS dependencies call require() for Node's own modules; an ES module has none.
  banner: { js: "import { createRequire as __mmCreateRequire } from 'node:module'; const require = __mmCreateRequire(import.meta.url);" },
  allowOverwrite: true,
  minifyWhitespace: true,
  minifySyntax: true,
  // No keepNames: it wraps every function made at run time in a __name() call (about 90 ms of a
  // 5,000-message copy's CPU, profiled); no code here reads a function's name (errors set theirs).
  keepNames: false,
  logLevel: 'warning',
});
await chmod('dist/cli/main.js', 0o755);
