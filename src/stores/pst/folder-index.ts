/**
 * The items of one PST folder: which are mail (listed by their node id, the UID), which are not
 * (counted by class, left out by design), which cannot be read (each costs that item), and the
 * attachments of its mail that are not in the file (OLE objects, references), counted.
 * Only node ids and counts are kept: an item's content is read when it is listed or fetched.
 */
import { createHash } from 'node:crypto';
import type { DescriptorIndexNode } from 'pst-extractor/dist/DescriptorIndexNode.class.js';
import type { PstArchive, PstFolderNode } from './pst-file.js';
import { isMailClass, reportedClass } from './item-meta.js';

export interface PstFolderIndex {
  folder: PstFolderNode;
  uidValidity: number;
  /** Mail items and unreadable items, by UID (the node id), ascending. */
  uids: number[];
  nodes: Map<number, DescriptorIndexNode>;
  /** Items whose node could not be read, with why. */
  broken: Map<number, string>;
  /** What was left out by design, by kind (an item class, or attachment:ole / attachment:by-reference). */
  leftOut: Map<string, number>;
}

const ATTACH_EMBEDDED_MSG = 5;
const ATTACH_OLE = 6;
const ATTACH_BY_VALUE = 1;

/** Indexes a folder: one read of each item's property context (not its body or attachments' data). */
export function indexFolder(archive: PstArchive, folder: PstFolderNode, signal?: AbortSignal): PstFolderIndex {
  const index: PstFolderIndex = { folder, uidValidity: uidValidityOf(archive.storeKey, folder.nid), uids: [], nodes: new Map(), broken: new Map(), leftOut: new Map() };
  const count = (kind: string) => index.leftOut.set(kind, (index.leftOut.get(kind) ?? 0) + 1);
  for (const node of archive.itemNodes(folder.nid)) {
    signal?.throwIfAborted();
    const uid = node.descriptorIdentifier;
    try {
      const item = archive.loadItem(node);
      if (!isMailClass(item.messageClass)) {
        count(reportedClass(item.messageClass));
        continue;
      }
      index.uids.push(uid);
      index.nodes.set(uid, node);
      // Attachments whose bytes are not in the file are counted here, so that the report has them before anything is copied.
      if (item.hasAttachments) {
        for (let i = 0; i < item.numberOfAttachments; i++) {
          const method = item.getAttachment(i).attachMethod;
          if (method === ATTACH_OLE) count('attachment:ole');
          else if (method !== ATTACH_BY_VALUE && method !== ATTACH_EMBEDDED_MSG && method !== 0) count('attachment:by-reference');
        }
      }
    } catch (err) {
      index.uids.push(uid);
      index.nodes.set(uid, node);
      index.broken.set(uid, (err as Error).message);
    }
  }
  return index;
}

/** UIDVALIDITY of a folder: from the file's record key and the folder's node id, so the same file always gives the same. */
export function uidValidityOf(storeKey: string, folderNid: number): number {
  const h = createHash('sha256').update(`${storeKey}/${folderNid}`).digest();
  return (h.readUInt32BE(0) & 0x7fffffff) || 1;
}
