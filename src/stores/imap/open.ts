/**
 * Builds the IMAP stores of a run: one factory for both sides from the caller's endpoint options,
 * so that migrate and verify connect alike (TLS policy, timeouts, name substitute, logger).
 */
import type { Logger } from 'pino';
import type { Endpoint } from '../../core/endpoint.js';
import type { MailStore } from '../mail-store.js';
import { EmlStore } from '../eml/eml-store.js';
import { MaildirStore } from '../maildir/maildir-store.js';
import { MboxStore } from '../mbox/mbox-store.js';
import { PstStore } from '../pst/pst-store.js';
import { GmailDestIndex } from '../gmail/dest-index.js';
import { GmailDestStore } from '../gmail/dest-store.js';
import { ImapStore } from './imap-store.js';

/** One side's connection settings. */
export interface SideOptions {
  endpoint: Endpoint;
  password: string;
  /** Act as this user after logging in with the URL's (SASL PLAIN authorization identity). */
  authzid?: string | undefined;
  /** Log in with OAuth 2.0 access tokens from this source instead of the password. */
  accessToken?: ((fresh: boolean) => Promise<string>) | undefined;
  tlsInsecure?: boolean | undefined;
  allowPlaintext?: boolean | undefined;
}

/** Settings shared by both sides. */
export interface StoreSettings {
  connectTimeoutSeconds?: number | undefined;
  idleTimeoutSeconds?: number | undefined;
  separatorSubstitute: string;
  logger?: Logger | undefined;
}

/** A function that builds a new, unconnected store for either side. */
export function storeFactory(source: SideOptions, destination: SideOptions, settings: StoreSettings): (side: 'source' | 'destination') => MailStore {
  // What a Gmail destination already holds, shared by the run's connections (see gmail/dest-store.ts).
  const gmail = new GmailDestIndex();
  return (side) => {
    const o = side === 'source' ? source : destination;
    const archive = o.endpoint.archive;
    if (archive?.kind === 'maildir') return new MaildirStore({ root: archive.root, layout: archive.layout, side });
    if (archive?.kind === 'eml') return new EmlStore({ root: archive.root, side });
    if (archive?.kind === 'mbox') return new MboxStore({ root: archive.root, side, labels: archive.labels, logger: settings.logger });
    if (archive?.kind === 'pst') return new PstStore({ file: archive.root, side });
    const imap = new ImapStore({
      endpoint: o.endpoint,
      credentials: { password: o.password, authzid: o.authzid, accessToken: o.accessToken },
      security: { tlsInsecure: !!o.tlsInsecure, allowPlaintext: !!o.allowPlaintext },
      side,
      connectTimeoutSeconds: settings.connectTimeoutSeconds,
      socketTimeoutSeconds: settings.idleTimeoutSeconds,
      separatorSubstitute: settings.separatorSubstitute,
      logger: settings.logger,
    });
    // A destination that turns out to offer X-GM-EXT-1 appends each message once (labels the rest).
    return side === 'destination' ? new GmailDestStore(imap, gmail, settings.logger) : imap;
  };
}
