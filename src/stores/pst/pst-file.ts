/**
 * One PST or OST file opened through pst-extractor (MIT; it reads with positional reads on a
 * file descriptor, `fs.readSync(fd, buf, 0, n, position)`, so the file is never loaded whole).
 *
 * Everything pst-extractor does is synchronous and throws plain Errors on a broken file; this
 * module is the only place that calls into its file and tree layer, and turns what it throws into
 * mailmover's codes: MM-PST-NOT-PST (no PST header), MM-PST-ENCRYPTED (high encryption, or an
 * Outlook password), MM-PST-CORRUPT (the node or block tree cannot be read). Walks over the tree
 * are bounded (depth, count, visited set) so that a corrupt tree that points back into itself
 * cannot loop.
 */
import { open, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { PSTFile, type PSTFolder, type PSTMessage } from 'pst-extractor';
import { PSTUtil } from 'pst-extractor/dist/PSTUtil.class.js';
import type { DescriptorIndexNode } from 'pst-extractor/dist/DescriptorIndexNode.class.js';
import { ERROR_CODES, MigrateError } from '../../core/errors.js';
import { itemProps } from './item-props.js';
import { cachePages } from './page-cache.js';

/** Node types (the low five bits of a node id, MS-PST 2.2.2.1). */
const NID_NORMAL_FOLDER = 0x02;
const NID_NORMAL_MESSAGE = 0x04;
/** The root folder's node id (MS-PST 2.4.1). */
const NID_ROOT_FOLDER = 0x122;
/** Bounds on a walk of the folder tree: deeper or larger than this is a corrupt tree, not a real one. */
const MAX_DEPTH = 64;
const MAX_FOLDERS = 100_000;

/** One folder of the PST's mail tree. */
export interface PstFolderNode {
  nid: number;
  /** Names from below the mail root ("Top of Personal Folders", IPM_SUBTREE) down to this folder. */
  path: string[];
  /** Set when the folder's own node could not be read: the folder is lost, not the file. */
  broken?: string;
  /** The folder's container class (IPF.Note for mail, IPF.Appointment, IPF.Contact...); '' when it has none. */
  containerClass: string;
  /** Set for the folders the message store names (Sent Items, Deleted Items). */
  specialUse?: string;
}

/** The bytes at the start of a PST (MS-PST 2.2.2.6): "!BDN", then the version at offset 10. */
async function readHeader(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(514);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export class PstArchive {
  private constructor(
    readonly path: string,
    private readonly file: PSTFile,
    private readonly children: Map<number, DescriptorIndexNode[]>,
    /** The message store's record key (a GUID written when the file was made), hex. */
    readonly storeKey: string,
    readonly format: 'ANSI' | 'Unicode',
    /** The file's size: no attachment in it can be larger. */
    readonly size: number,
  ) {}

  /** Opens and checks a file; throws MigrateError (scope 'mailbox') with the code that says what is wrong. */
  static async open(path: string): Promise<PstArchive> {
    const st = await stat(path).catch((err: NodeJS.ErrnoException) => err);
    if (st instanceof Error) throw new MigrateError(ERROR_CODES.ARCHIVE_OPEN, `The source PST ${path} cannot be opened: ${st.code === 'ENOENT' ? 'it does not exist' : st.message}.`, { scope: 'mailbox' });
    if (!st.isFile()) throw new MigrateError(ERROR_CODES.ARCHIVE_OPEN, `The source PST ${path} is not a file.`, { scope: 'mailbox' });
    const header = await readHeader(path).catch((err: Error) => {
      throw new MigrateError(ERROR_CODES.ARCHIVE_OPEN, `The source PST ${path} cannot be read: ${err.message}.`, { scope: 'mailbox' });
    });
    if (header.length < 4 || header.toString('latin1', 0, 4) !== '!BDN') {
      throw new MigrateError(ERROR_CODES.PST_NOT_PST, `${path} is not a PST or OST file: it does not start with the PST signature "!BDN".`, { scope: 'mailbox' });
    }
    const version = header[10] ?? 0;
    const ost = header.toString('latin1', 8, 10) === 'SO';
    const ansi = version === 14 || version === 15;
    if (!ansi && version !== 23 && version !== 36) {
      throw new MigrateError(ERROR_CODES.PST_NOT_PST, `${path} has the PST signature but an unknown format version (${version}): only ANSI (14, 15), Unicode (23) and OST 2013 (36) files are read.`, { scope: 'mailbox' });
    }
    if (header.length < 514) throw corrupt(path, `the file ends inside its header (${header.length} bytes)`);
    // bCryptMethod (MS-PST 2.2.2.6): 0 none, 1 permutation (read), 2 cyclic, 0x10 Windows Information Protection.
    const crypt = header[ansi ? 461 : 513]!;
    if (crypt === 0x02 || crypt === 0x10) {
      throw new MigrateError(ERROR_CODES.PST_ENCRYPTED, `${path} uses ${crypt === 0x02 ? '"high" (cyclic) encryption' : 'Windows Information Protection'}, which mailmover does not read. Open it in Outlook and export it to a new PST without encryption, then run again.`, { scope: 'mailbox' });
    }
    let file: PSTFile;
    try {
      file = new PSTFile(path);
    } catch (err) {
      throw corrupt(path, (err as Error).message, err);
    }
    // The descriptor pst-extractor opened (it exposes no accessor for it): its reads are cached from here on.
    const fd = (file as unknown as { pstFD: number }).pstFD;
    if (typeof fd === 'number' && fd > 0) cachePages(file, fd);
    try {
      const store = file.getMessageStore();
      const props = itemProps(store);
      // PR_PST_PASSWORD (0x67FF): the CRC of the password Outlook asks for; 0 when there is none.
      // Only a PST (client magic "SM") has one: an OST ("SO") holds a server's cache and keeps other values there.
      if (!ost && props.int(0x67ff) !== 0) {
        throw new MigrateError(ERROR_CODES.PST_ENCRYPTED, `${path} is protected by an Outlook password, which mailmover does not bypass. Remove the password in Outlook (Data File Settings, Change Password), then run again.`, { scope: 'mailbox' });
      }
      const key = props.binary(0x0ff9);
      const children = file.getChildDescriptorTree();
      return new PstArchive(path, file, children, key?.length ? key.toString('hex') : createHash('sha256').update(path).digest('hex').slice(0, 32), ansi ? 'ANSI' : 'Unicode', st.size);
    } catch (err) {
      file.close();
      if (err instanceof MigrateError) throw err;
      throw corrupt(path, (err as Error).message, err);
    }
  }

  close(): void {
    this.file.close();
  }

  /** The mail folders: the tree below the message store's IPM subtree, search folders left out. */
  folders(): PstFolderNode[] {
    const root = this.mailRoot();
    const special = this.specialFolders();
    const out: PstFolderNode[] = [];
    const seen = new Set<number>([root]);
    const walk = (parent: number, path: string[]) => {
      if (path.length >= MAX_DEPTH) return;
      const names = new Set<string>();
      for (const node of this.folderChildren(parent)) {
        const nid = node.descriptorIdentifier;
        if (seen.has(nid) || out.length >= MAX_FOLDERS) continue;
        seen.add(nid);
        let name: string;
        let broken: string | undefined;
        let containerClass = '';
        try {
          const folder = PSTUtil.detectAndLoadPSTObject(this.file, node) as PSTFolder;
          name = folder.displayName.trim() || `Folder ${nid}`;
          containerClass = folder.containerClass;
        } catch (err) {
          name = `Folder ${nid}`;
          broken = (err as Error).message;
        }
        // Two sibling folders of one name would be one folder at the destination: the second is told apart by its node id.
        if (names.has(name.toLowerCase())) name = `${name} (${nid})`;
        names.add(name.toLowerCase());
        const entry: PstFolderNode = { nid, path: [...path, name], containerClass };
        if (broken) entry.broken = broken;
        if (special.has(nid) && path.length === 0) entry.specialUse = special.get(nid)!;
        out.push(entry);
        if (!broken) walk(nid, entry.path);
      }
    };
    walk(root, []);
    return out;
  }

  /** The node ids of a folder's items (messages, appointments, contacts...), in ascending order. */
  itemNodes(folderNid: number): DescriptorIndexNode[] {
    const nodes = (this.children.get(folderNid) ?? []).filter((n) => (n.descriptorIdentifier & 0x1f) === NID_NORMAL_MESSAGE);
    return nodes.sort((a, b) => a.descriptorIdentifier - b.descriptorIdentifier);
  }

  /** Loads one item; throws a plain Error when its node cannot be read (the caller reports it). */
  loadItem(node: DescriptorIndexNode): PSTMessage {
    const item = PSTUtil.detectAndLoadPSTObject(this.file, node) as PSTMessage;
    if (typeof item?.messageClass !== 'string') throw new Error(`node ${node.descriptorIdentifier} is not an item`);
    return item;
  }

  /** The mail root: the store's IPM subtree entry, else a root child named like it, else the root. */
  private mailRoot(): number {
    const fromStore = this.entryNid(0x35e0);
    if (fromStore !== undefined && this.nodeExists(fromStore)) return fromStore;
    for (const node of this.folderChildren(NID_ROOT_FOLDER)) {
      try {
        const name = (PSTUtil.detectAndLoadPSTObject(this.file, node) as PSTFolder).displayName;
        if (/^(IPM_SUBTREE|Top of )/i.test(name)) return node.descriptorIdentifier;
        if (/^Root - Mailbox$/i.test(name)) {
          for (const inner of this.folderChildren(node.descriptorIdentifier)) {
            if (/^IPM_SUBTREE$/i.test((PSTUtil.detectAndLoadPSTObject(this.file, inner) as PSTFolder).displayName)) return inner.descriptorIdentifier;
          }
        }
      } catch {
        // A root child that cannot be read is not the mail root.
      }
    }
    return NID_ROOT_FOLDER;
  }

  /** Sent Items and Deleted Items as the message store names them (PR_IPM_SENTMAIL_ENTRYID, PR_IPM_WASTEBASKET_ENTRYID). */
  private specialFolders(): Map<number, string> {
    const out = new Map<number, string>();
    const sent = this.entryNid(0x35e4);
    const trash = this.entryNid(0x35e3);
    if (sent !== undefined) out.set(sent, '\\Sent');
    if (trash !== undefined) out.set(trash, '\\Trash');
    return out;
  }

  /** The node id an entry id property of the message store points at (its last four bytes). */
  private entryNid(prop: number): number | undefined {
    try {
      const id = itemProps(this.file.getMessageStore()).binary(prop);
      return id && id.length >= 24 ? id.readUInt32LE(20) : undefined;
    } catch {
      return undefined;
    }
  }

  private nodeExists(nid: number): boolean {
    for (const list of this.children.values()) if (list.some((n) => n.descriptorIdentifier === nid)) return true;
    return false;
  }

  private folderChildren(parent: number): DescriptorIndexNode[] {
    return (this.children.get(parent) ?? []).filter((n) => (n.descriptorIdentifier & 0x1f) === NID_NORMAL_FOLDER && n.descriptorIdentifier !== parent).sort((a, b) => a.descriptorIdentifier - b.descriptorIdentifier);
  }
}

function corrupt(path: string, why: string, cause?: unknown): MigrateError {
  return new MigrateError(ERROR_CODES.PST_CORRUPT, `${path} is a damaged PST: ${why}. Nothing was copied from it; run Outlook's Inbox Repair Tool (scanpst.exe) on a copy, then run again.`, { scope: 'mailbox', ...(cause ? { cause } : {}) });
}
