/**
 * A Gmail Takeout-style mbox ("All mail Including Spam and Trash.mbox") for the label tests: the
 * `From <id>@xxx <date>` lines, `X-GM-THRID` and `X-Gmail-Labels` as Takeout writes them (labels
 * comma-separated, quoted when they hold a comma), LF line ends, `>From ` quoting in bodies.
 */

export interface TakeoutMessage {
  /** The message as IMAP will serve it (CRLF), without the From line. */
  raw: Buffer;
  labels: string[];
  date: Date;
}

const ASCTIME = (d: Date) => {
  const s = d.toUTCString(); // "Tue, 02 Jan 2024 03:04:05 GMT"
  const m = /^(\w+), (\d+) (\w+) (\d+) ([\d:]+)/.exec(s)!;
  return `${m[1]} ${m[3]} ${m[2]!.padStart(2, '0')} ${m[5]} +0000 ${m[4]}`;
};

/** The messages of the test Takeout: Inbox, Sent, Starred, Important, nested, non-ASCII, a comma label, five labels, no labels. */
export function takeoutMessages(): TakeoutMessage[] {
  const msg = (n: number, labels: string[], extra = ''): TakeoutMessage => {
    const date = new Date(Date.UTC(2020, 0, n, 10, 0, 0));
    const headerLabels = labels.map((l) => (l.includes(',') ? `"${l}"` : l)).join(',');
    const raw = Buffer.from(
      [`X-GM-THRID: 17000000000000${n}`, `X-Gmail-Labels: ${headerLabels}`, `From: Sender ${n} <s${n}@example.com>`, `To: me@example.com`, `Subject: takeout ${n}`, `Message-ID: <takeout-${n}@example.com>`, `Date: ${date.toUTCString()}`, '', `Body of message ${n}.`, extra, ''].join('\r\n'),
    );
    return { raw, labels, date };
  };
  return [
    msg(1, ['Inbox', 'Opened']),
    msg(2, ['Sent', 'Opened']),
    msg(3, ['Inbox', 'Starred', 'Unread']),
    msg(4, ['Important', 'Work/Clients', 'Opened', 'Category Updates']),
    msg(5, ['Bücher', 'Opened']),
    msg(6, ['Family, Friends', 'Opened']),
    msg(7, ['Inbox', 'Important', 'Starred', 'Work/Clients', 'Bücher', 'Opened'], 'From here on, a quoted line.'),
    msg(8, ['Archived', 'Opened']),
    msg(9, ['Spam', 'Unread']),
  ];
}

/** The mbox file's bytes (LF line ends, mboxrd quoting). */
export function takeoutMbox(messages: readonly TakeoutMessage[]): Buffer {
  return Buffer.concat(
    messages.map((m, i) => {
      const text = m.raw.toString('utf8').replace(/\r\n/g, '\n').replace(/^(>*From )/gm, '>$1');
      return Buffer.from(`From ${1700000000000 + i}@xxx ${ASCTIME(m.date)}\n${text}\n`, 'utf8');
    }),
  );
}
