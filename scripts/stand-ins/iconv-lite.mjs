/**
 * The CLI bundle's stand-in for iconv-lite (scripts/bundle-cli.mjs puts it wherever imapflow
 * imports iconv-lite).
 *
 * Why: imapflow calls iconv-lite for one thing on a copy's path, folder names in modified UTF-7
 * (RFC 3501 §5.1.3) as soon as a name holds "&" or a non-ASCII character, and iconv-lite's first
 * use loads the tables of every charset it knows: measured here, +6 MiB of peak RSS and ~13 ms per
 * start, for a codec of a few lines. emailjs-utf7 does that codec alone. A name is decoded by it
 * only when it is canonical modified UTF-7 (printable ASCII that encodes back to exactly itself),
 * where the two libraries agree; anything else (a malformed name from a hostile server, another
 * charset, any other function) goes to the real iconv-lite, loaded from node_modules on first use,
 * so what imapflow gets is what iconv-lite would have given it.
 */
import { Buffer } from 'node:buffer';
import { createRequire } from 'node:module';
import { imapDecode, imapEncode } from 'emailjs-utf7';

const requireReal = createRequire(import.meta.url);
let real;
const load = () => (real ??= requireReal('iconv-lite'));

/** iconv-lite's name for modified UTF-7, in any of the spellings it accepts. */
const isImapUtf7 = (encoding) => String(encoding).toLowerCase().replace(/[^0-9a-z]/g, '') === 'utf7imap';

function encode(content, encoding, options) {
  if (isImapUtf7(encoding) && typeof content === 'string' && options === undefined) return Buffer.from(imapEncode(content), 'latin1');
  return load().encode(content, encoding, options);
}

function decode(input, encoding, options) {
  if (isImapUtf7(encoding) && options === undefined && (Buffer.isBuffer(input) || typeof input === 'string')) {
    const text = Buffer.isBuffer(input) ? input.toString('latin1') : input;
    if (/^[\x20-\x7e]*$/.test(text)) {
      let name;
      try {
        name = imapDecode(text);
      } catch {
        name = undefined;
      }
      if (name !== undefined && imapEncode(name) === text) return name;
    }
  }
  return load().decode(input, encoding, options);
}

const own = { encode, decode };

/** iconv-lite itself for everything but the two calls above. */
export default new Proxy(own, {
  get: (target, key) => (key in target ? target[key] : load()[key]),
  has: (target, key) => key in target || key in load(),
  set: (_, key, value) => ((load()[key] = value), true),
});
