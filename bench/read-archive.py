#!/usr/bin/env python3
"""Independent reader for the archives the bench's tools write (Python's stdlib `mailbox` only).

    python3 bench/read-archive.py maildir ROOT [--inbox DIR]
    python3 bench/read-archive.py mbox ROOT

Prints JSON: {"folders": [{"path", "noSelect", "messages": [{"sha256", "size", "header",
"bodySha256", "messageId", "flags", "internalDate"}]}]}, the shape of bench/verify.ts's snapshot,
so the bench compares it with the IMAP source exactly as it compares an IMAP copy.

How a message is turned back into what an IMAP server would serve:
- line ends: mbox and mbsync's Maildir store LF; IMAP serves CRLF, so LF is turned into CRLF
  (the bench's corpus is CRLF throughout, with no bare LF of its own);
- mbox: the store's own header fields (Status, X-Status, X-Keywords, X-UID, X-IMAPbase, X-IMAP,
  Content-Length, X-Mozilla-*) are flags and framing, not message bytes: taken off and read as
  flags (Status R = \\Seen; X-Status A/F/T/D = \\Answered/\\Flagged/\\Draft/\\Deleted;
  X-Keywords = keywords); with Content-Length the body is exactly that long, without it
  `>From ` quoting (mboxrd) is undone; INTERNALDATE is the `From ` line's date (UTC);
- Maildir: flags from the `:2,` info (D F P R S T = \\Draft \\Flagged $Forwarded \\Answered \\Seen
  \\Deleted), keyword letters a-z through the folder's dovecot-keywords file, INTERNALDATE = the
  file's mtime.
Folder names on disk are modified UTF-7 (as Dovecot and mbsync write IMAP names) and are decoded.
"""
import calendar
import hashlib
import json
import mailbox
import os
import re
import sys
import time

STORE_FIELDS = {'status', 'x-status', 'x-keywords', 'x-uid', 'x-imapbase', 'x-imap', 'content-length',
                'x-mozilla-status', 'x-mozilla-status2', 'x-mozilla-keys'}
MAILDIR_FLAGS = {'D': '\\Draft', 'F': '\\Flagged', 'P': '$Forwarded', 'R': '\\Answered', 'S': '\\Seen', 'T': '\\Deleted'}
X_STATUS = {'A': '\\Answered', 'F': '\\Flagged', 'T': '\\Draft', 'D': '\\Deleted'}
LF = re.compile(rb'(?<!\r)\n')
MESSAGE_ID = re.compile(r'^message-id:\s*(.*)$', re.I | re.M)


def decode_mutf7(name):
    """RFC 3501 modified UTF-7 -> str ('&' starts base64 with ',' for '/', '&-' is '&')."""
    out, i = [], 0
    while i < len(name):
        c = name[i]
        if c != '&':
            out.append(c)
            i += 1
            continue
        j = name.index('-', i)
        chunk = name[i + 1:j]
        if chunk == '':
            out.append('&')
        else:
            b64 = chunk.replace(',', '/')
            out.append(('+' + b64 + '-').encode('ascii').decode('utf-7'))
        i = j + 1
    return ''.join(out)


def entry(raw_crlf, flags, internal_date):
    end = raw_crlf.find(b'\r\n\r\n')
    header, body = (raw_crlf, b'') if end < 0 else (raw_crlf[:end], raw_crlf[end + 4:])
    header_text = header.decode('latin1')
    mid = MESSAGE_ID.search(header_text)
    return {
        'sha256': hashlib.sha256(raw_crlf).hexdigest(),
        'size': len(raw_crlf),
        'header': header_text,
        'bodySha256': hashlib.sha256(body).hexdigest(),
        'messageId': mid.group(1).strip() if mid else '',
        'flags': sorted(set(flags)),
        'internalDate': int(round(internal_date * 1000)),
    }


def read_maildir(root, inbox):
    folders = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ('cur', 'new', 'tmp'))
        rel = os.path.relpath(dirpath, root)
        if os.path.abspath(dirpath) == os.path.abspath(inbox or os.path.join(root, 'INBOX')):
            path = 'INBOX'
        elif rel == '.':
            if not os.path.isdir(os.path.join(dirpath, 'cur')):
                continue
            path = 'INBOX'
        else:
            path = '/'.join(decode_mutf7(p) for p in rel.split(os.sep))
        is_maildir = os.path.isdir(os.path.join(dirpath, 'cur'))
        folder = {'path': path, 'noSelect': not is_maildir, 'messages': []}
        folders.append(folder)
        if not is_maildir:
            continue
        keywords = {}
        kw_file = os.path.join(dirpath, 'dovecot-keywords')
        if os.path.exists(kw_file):
            with open(kw_file, encoding='utf-8') as fh:
                for line in fh:
                    parts = line.split(None, 1)
                    if len(parts) == 2 and parts[0].isdigit():
                        keywords[chr(ord('a') + int(parts[0]))] = parts[1].strip()
        box = mailbox.Maildir(dirpath, factory=None, create=False)
        for key in box.iterkeys():
            msg = box.get_message(key)
            flags = [MAILDIR_FLAGS[c] for c in msg.get_flags() if c in MAILDIR_FLAGS]
            flags += [keywords[c] for c in msg.get_flags() if c in keywords]
            raw = LF.sub(b'\r\n', box.get_bytes(key))
            folder['messages'].append(entry(raw, flags, msg.get_date()))
    return folders


def from_line_date(from_):
    # "sender Tue Jan  1 00:00:00 2019": the date is the last five words, UTC
    words = from_.split()
    return calendar.timegm(time.strptime(' '.join(words[-5:]), '%a %b %d %H:%M:%S %Y'))


def read_mbox_message(raw_lf):
    end = raw_lf.find(b'\n\n')
    head, body = (raw_lf, b'') if end < 0 else (raw_lf[:end + 1], raw_lf[end + 2:])
    fields = []
    for line in head.splitlines(keepends=True):
        if line[:1] in (b' ', b'\t') and fields:
            fields[-1] += line
        else:
            fields.append(line)
    kept, flags, content_length = [], [], None
    for f in fields:
        name, _, value = f.partition(b':')
        lname = name.strip().lower().decode('latin1')
        if lname not in STORE_FIELDS:
            kept.append(f)
            continue
        v = value.decode('utf-8', 'replace').strip()
        if lname == 'status' and 'R' in v:
            flags.append('\\Seen')
        elif lname == 'x-status':
            flags += [X_STATUS[c] for c in v if c in X_STATUS]
        elif lname == 'x-keywords':
            flags += [k for k in re.split(r'[\s,]+', v) if k]
        elif lname == 'content-length' and v.isdigit():
            content_length = int(v)
    head = b''.join(kept)
    if content_length is not None:
        body = body[:content_length]
    else:
        unquote = lambda b: re.sub(rb'(?m)^>(>*From )', rb'\1', b)  # noqa: E731 (mboxrd)
        head, body = unquote(head), unquote(body)
    raw = head + b'\n' + body if end >= 0 else head
    return LF.sub(b'\r\n', raw), flags


def read_mbox(root):
    folders = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
        rel = os.path.relpath(dirpath, root)
        if rel != '.':
            path = '/'.join(decode_mutf7(p) for p in rel.split(os.sep))
            # a directory holds children only (Dovecot's mbox layout)
            if not any(f['path'] == path for f in folders):
                folders.append({'path': path, 'noSelect': True, 'messages': []})
        for name in sorted(filenames):
            if name.startswith('.') or name.endswith('.lock'):
                continue
            full = os.path.join(dirpath, name)
            if rel == '.' and name.lower() == 'inbox':
                path = 'INBOX'
            else:
                path = '/'.join(decode_mutf7(p) for p in os.path.relpath(full, root).split(os.sep))
            folder = {'path': path, 'noSelect': False, 'messages': []}
            folders = [f for f in folders if f['path'] != path] + [folder]
            box = mailbox.mbox(full, factory=None, create=False)
            for key in box.iterkeys():
                raw, flags = read_mbox_message(box.get_bytes(key))
                date = from_line_date(box.get_message(key).get_from())
                folder['messages'].append(entry(raw, flags, date))
    return folders


def main():
    args = sys.argv[1:]
    if len(args) < 2 or args[0] not in ('maildir', 'mbox'):
        print(__doc__, file=sys.stderr)
        return 2
    kind, root = args[0], args[1]
    inbox = args[args.index('--inbox') + 1] if '--inbox' in args else None
    folders = read_maildir(root, inbox) if kind == 'maildir' else read_mbox(root)
    json.dump({'folders': folders}, sys.stdout)
    return 0


if __name__ == '__main__':
    sys.exit(main())
