/**
 * What an Outlook item says about itself apart from its content: whether it is mail (by its
 * message class), its IMAP flags and its INTERNALDATE.
 */
import type { PSTMessage } from 'pst-extractor';
import { itemProps } from './item-props.js';

/**
 * Message classes that are mail: notes (and their signed/encrypted forms), meeting requests and
 * responses (they arrive as mail), reports (delivery and read receipts), posts, sharing
 * invitations, task requests and recalls. Everything else (IPM.Appointment, IPM.Contact,
 * IPM.DistList, IPM.Task, IPM.StickyNote, IPM.Activity, configuration items...) is not mail.
 */
const MAIL_CLASS = /^(IPM\.Note|IPM\.Schedule\.Meeting|REPORT\.|IPM\.Post|IPM\.Sharing|IPM\.TaskRequest|IPM\.Outlook\.Recall|IPM$)/i;

/** True when an item of this class becomes a message; an item with no class is taken as a note. */
export function isMailClass(messageClass: string): boolean {
  return messageClass === '' || MAIL_CLASS.test(messageClass);
}

/** The class as reported for an item left out: its first two levels (IPM.Appointment, IPM.Contact). */
export function reportedClass(messageClass: string): string {
  return messageClass.split('.').slice(0, 2).join('.') || '(none)';
}

/** MAPI property tags used here (MS-OXPROPS). */
const PR_MESSAGE_FLAGS = 0x0e07;
const PR_FLAG_STATUS = 0x1090;
const PR_LAST_VERB_EXECUTED = 0x1081;
const MSGFLAG_READ = 0x01;
const MSGFLAG_UNSENT = 0x08;
const FOLLOWUP_FLAGGED = 2;
const VERB_REPLY_TO_SENDER = 102;
const VERB_REPLY_TO_ALL = 103;
const VERB_FORWARD = 104;

/** \Seen from the read flag, \Flagged from the follow-up flag, \Answered/$Forwarded from the last verb, \Draft for unsent items. */
export function itemFlags(item: PSTMessage): string[] {
  const props = itemProps(item);
  const flags: string[] = [];
  const mf = props.int(PR_MESSAGE_FLAGS);
  if (mf & MSGFLAG_READ) flags.push('\\Seen');
  if (mf & MSGFLAG_UNSENT) flags.push('\\Draft');
  if (props.int(PR_FLAG_STATUS) === FOLLOWUP_FLAGGED) flags.push('\\Flagged');
  const verb = props.int(PR_LAST_VERB_EXECUTED);
  if (verb === VERB_REPLY_TO_SENDER || verb === VERB_REPLY_TO_ALL) flags.push('\\Answered');
  if (verb === VERB_FORWARD) flags.push('$Forwarded');
  return flags;
}

/** INTERNALDATE: the delivery time, else the submit time, else when the item was made. */
export function itemDate(item: PSTMessage): Date | undefined {
  for (const d of [safe(() => item.messageDeliveryTime), safe(() => item.clientSubmitTime), safe(() => item.creationTime)]) {
    if (d instanceof Date && !Number.isNaN(d.getTime())) return d;
  }
  return undefined;
}

function safe<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}
