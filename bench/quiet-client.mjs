/**
 * The least a Node tool built on imapflow does for a rerun with nothing to copy: start Node, log
 * in to the source and the destination at once, ask each for its folders with their status in
 * one LIST-STATUS (RFC 5819), log out. No ledger, no planning, no output. bench/floor.ts times it
 * beside Node's bare start, mailmover's rerun and mbsync's.
 *
 * Plain JavaScript, run by plain `node` (no tsx), so that its start-up is Node's and imapflow's
 * only. Server and users from the environment: QUIET_HOST, QUIET_PORT, QUIET_USERS
 * ("user:password,user:password").
 */
import process from 'node:process';
import { ImapFlow } from 'imapflow';

const host = process.env.QUIET_HOST ?? '127.0.0.1';
const port = Number(process.env.QUIET_PORT);
const users = (process.env.QUIET_USERS ?? '').split(',').filter(Boolean).map((p) => p.split(':'));
if (!port || users.length === 0) throw new Error('QUIET_PORT and QUIET_USERS are required');

const folders = await Promise.all(
  users.map(async ([user, pass]) => {
    const c = new ImapFlow({ host, port, secure: false, doSTARTTLS: false, auth: { user, pass }, logger: false });
    await c.connect();
    const list = await c.list({ statusQuery: { messages: true, uidNext: true, uidValidity: true, highestModseq: true } });
    await c.logout();
    return list.length;
  }),
);
// Something was listed on every side, or the floor measured nothing.
if (folders.some((n) => n === 0)) process.exit(3);
