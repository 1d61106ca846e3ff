/**
 * Catches the server lines imapflow could not parse.
 *
 * imapflow skips an unparseable untagged line and only logs it (as an error entry with
 * `src: 's'` and the raw line in `msg`). Skipped silently, a malformed LIST line would make a
 * folder vanish and a malformed FETCH line a message. This logger keeps those lines, so the
 * store can report the folder or message they cost with the server's raw words.
 */
import type { Logger } from 'pino';

/** Raw lines are kept up to this length (a line can be huge; the start identifies it). */
const MAX_LINE = 512;

/** A logger for imapflow that records unparseable lines and forwards warnings to pino. */
export class ResponseLog {
  private lines: string[] = [];
  readonly logger: { debug: () => void; info: () => void; warn: (o: unknown) => void; error: (o: unknown) => void; trace: () => void; fatal: (o: unknown) => void };

  constructor(pinoLogger: Logger | undefined) {
    const forward = (level: 'warn' | 'error', o: unknown) => pinoLogger?.[level](o as object);
    this.logger = {
      trace: () => undefined,
      debug: () => undefined,
      info: () => undefined,
      warn: (o) => forward('warn', o),
      error: (o) => {
        const entry = o as { src?: string; msg?: unknown };
        if (entry?.src === 's' && typeof entry.msg === 'string') this.lines.push(redactLine(entry.msg.slice(0, MAX_LINE)));
        forward('error', o);
      },
      fatal: (o) => forward('error', o),
    };
  }

  /** A marker to pass to {@link since}. */
  mark(): number {
    return this.lines.length;
  }

  /** Unparseable lines seen since `mark`. */
  since(mark: number): string[] {
    return this.lines.slice(mark);
  }
}

/** Hides anything that looks like a credential in a raw line (LOGIN arguments, SASL blobs). */
export function redactLine(line: string): string {
  return line
    .replace(/(\bLOGIN\s+\S+\s+)\S+/gi, '$1[redacted]')
    .replace(/(\bAUTHENTICATE\s+\S+\s+)\S+/gi, '$1[redacted]')
    .replace(/[\r\n]+$/, '');
}
