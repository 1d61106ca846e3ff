/**
 * Builds the IMAP stores of a run: one factory for both sides from the caller's endpoint options,
 * so that migrate and verify connect alike (TLS policy, timeouts, name substitute, logger).
 */
import type { Logger } from 'pino';
import type { Endpoint } from '../../core/endpoint.js';
import type { MailStore } from '../mail-store.js';
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

/**
 * A function that builds a new, unconnected store for either side. The archive drivers are
 * loaded only when a side is such an archive: the PST reader (with its RTF and charset tables)
 * and the others cost an IMAP-only run's start-up nothing.
 */
export async function storeFactory(source: SideOptions, destination: SideOptions, settings: StoreSettings): Promise<(side: 'source' | 'destination') => MailStore> {
  const archives = new Map<string, (side: 'source' | 'destination', archive: NonNullable<Endpoint['archive']>) => MailStore>();
  for (const o of [source, destination]) {
    const kind = o.endpoint.archive?.kind;
    if (!kind || archives.has(kind)) continue;
    if (kind === 'maildir') {
      const { MaildirStore } = await import('../maildir/maildir-store.js');
      archives.set(kind, (side, a) => new MaildirStore({ root: a.root, layout: a.kind === 'maildir' ? a.layout : 'maildirpp', side }));
    } else if (kind === 'eml') {
      const { EmlStore } = await import('../eml/eml-store.js');
      archives.set(kind, (side, a) => new EmlStore({ root: a.root, side }));
    } else if (kind === 'mbox') {
      const { MboxStore } = await import('../mbox/mbox-store.js');
      archives.set(kind, (side, a) => new MboxStore({ root: a.root, side, labels: a.kind === 'mbox' ? a.labels : undefined, logger: settings.logger }));
    } else if (kind === 'pst') {
      const { PstStore } = await import('../pst/pst-store.js');
      archives.set(kind, (side, a) => new PstStore({ file: a.root, side }));
    }
  }
  // What a Gmail destination already holds, shared by the run's connections (see gmail/dest-store.ts).
  const gmail = new GmailDestIndex();
  return (side) => {
    const o = side === 'source' ? source : destination;
    const archive = o.endpoint.archive;
    if (archive) return archives.get(archive.kind)!(side, archive);
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
