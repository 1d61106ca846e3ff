/**
 * Folder levels an IMAP destination is never given. Dovecot and Courier keep mail in Maildirs;
 * with Dovecot's LAYOUT=fs a folder is a directory holding its own cur/new/tmp and control files,
 * so a folder named "subscriptions" (or "dovecot.index", "dovecot-uidlist", ...) turns a control
 * file into a directory and breaks LSUB or the index for the whole account, and a folder "new"
 * inside another folder lands on that folder's own new/ directory. Maildir++ (Courier, Dovecot's
 * default) is not hurt by every one of these at every level, but a client cannot see the
 * server's layout, so the whole list applies at every level, case-insensitively (some file
 * systems fold case). What a user sees: a folder "new" arrives as "_new", "Work/tmp" as
 * "Work/_tmp", each with a line in the plan ("renamed: reserved-name").
 */
export const IMAP_RESERVED_NAMES: readonly string[] = Object.freeze(['subscriptions', 'dovecot*', 'cur', 'new', 'tmp', 'maildirfolder', 'courierimap*']);
