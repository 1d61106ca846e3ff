/**
 * IMAP's modified UTF-7 (RFC 3501 §5.1.3), the spelling Dovecot uses for folder names on disk
 * (directory names and the `subscriptions` file).
 *
 * Written here rather than taken from npm: the packages that do it (utf7, emailjs-utf7) have had
 * no release in years, and Node's Buffer already does the two real steps (UTF-16BE and base64);
 * what is left is the RFC's framing, a few lines.
 */

/** Encodes a Unicode name: printable ASCII as itself (`&` as `&-`), the rest as `&<base64 of UTF-16BE>-`. */
export function encodeMutf7(name: string): string {
  let out = '';
  let pending = '';
  const flush = () => {
    if (!pending) return;
    const b64 = swapToBe(Buffer.from(pending, 'utf16le')).toString('base64').replace(/=+$/, '').replace(/\//g, ',');
    out += `&${b64}-`;
    pending = '';
  };
  for (const ch of name) {
    const c = ch.codePointAt(0)!;
    if (c >= 0x20 && c <= 0x7e) {
      flush();
      out += ch === '&' ? '&-' : ch;
    } else {
      pending += ch;
    }
  }
  flush();
  return out;
}

/** Decodes a modified UTF-7 name; text that is not valid modified UTF-7 comes back unchanged. */
export function decodeMutf7(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch !== '&') {
      out += ch;
      continue;
    }
    const end = text.indexOf('-', i + 1);
    if (end < 0) return text;
    const inner = text.slice(i + 1, end);
    if (inner === '') out += '&';
    else {
      if (!/^[A-Za-z0-9+,]+$/.test(inner)) return text;
      const bytes = Buffer.from(inner.replace(/,/g, '/'), 'base64');
      if (bytes.length % 2 !== 0) return text;
      out += swapToBe(Buffer.from(bytes)).toString('utf16le');
    }
    i = end;
  }
  return out;
}

/** Swaps each byte pair (UTF-16LE <-> UTF-16BE), in place. */
function swapToBe(buf: Buffer): Buffer {
  return buf.swap16();
}
