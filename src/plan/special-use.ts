/**
 * Special folders (Sent, Drafts, Trash, Junk, Archive): which folder of a tree plays which role.
 *
 * The server's own word comes first (RFC 6154 SPECIAL-USE attributes, or Gmail's XLIST), then a
 * well-known name in a common language. Names are only trusted at the top of the personal tree
 * (or directly below Gmail's "[Gmail]" / "[Google Mail]"), so that "Projects/Archive" stays a
 * project folder. Pure: no I/O.
 */
import type { FolderInfo } from '../stores/mail-store.js';

/** The roles mailmover maps between servers. */
export type SpecialRole = '\\Sent' | '\\Drafts' | '\\Trash' | '\\Junk' | '\\Archive';

/** Gmail's views of messages that live in other folders (copying them would multiply messages). */
export type ViewRole = '\\All' | '\\Important' | '\\Flagged';

/**
 * Well-known names per role, as shipped by common servers and clients (English, German, French,
 * Spanish, Italian, Dutch, Swedish, Polish, Russian, Japanese), compared case-insensitively.
 */
const NAMES: Record<SpecialRole, readonly string[]> = {
  '\\Sent': ['Sent', 'Sent Items', 'Sent Messages', 'Sent Mail', 'Sent-Mail', 'Outbox Sent', 'Gesendet', 'Gesendete Objekte', 'Gesendete Elemente', 'Gesendete Nachrichten', 'Éléments envoyés', 'Messages envoyés', 'Envoyés', 'Elementos enviados', 'Enviados', 'Posta inviata', 'Inviati', 'Verzonden items', 'Verzonden', 'Skickat', 'Skickade objekt', 'Wysłane', 'Elementy wysłane', 'Отправленные', '送信済み', '送信済みアイテム'],
  '\\Drafts': ['Drafts', 'Draft', 'Entwürfe', 'Brouillons', 'Borradores', 'Bozze', 'Concepten', 'Utkast', 'Kopie robocze', 'Szkice', 'Черновики', '下書き'],
  '\\Trash': ['Trash', 'Deleted Items', 'Deleted Messages', 'Deleted', 'Bin', 'Papierkorb', 'Gelöschte Elemente', 'Gelöschte Objekte', 'Corbeille', 'Éléments supprimés', 'Papelera', 'Elementos eliminados', 'Cestino', 'Posta eliminata', 'Prullenbak', 'Verwijderde items', 'Papperskorgen', 'Borttagna objekt', 'Kosz', 'Elementy usunięte', 'Корзина', 'Удаленные', 'ごみ箱', '削除済みアイテム'],
  '\\Junk': ['Junk', 'Junk E-mail', 'Junk Email', 'Junk Mail', 'Spam', 'Bulk Mail', 'Junk-E-Mail', 'Spamverdacht', 'Courrier indésirable', 'Pourriel', 'Correo no deseado', 'Posta indesiderata', 'Ongewenste e-mail', 'Skräppost', 'Wiadomości-śmieci', 'Спам', '迷惑メール'],
  '\\Archive': ['Archive', 'Archives', 'Archiv', 'Archivo', 'Archivio', 'Archief', 'Arkiv', 'Archiwum', 'Архив', 'アーカイブ'],
};

const ROLES = Object.keys(NAMES) as SpecialRole[];
const VIEWS: readonly ViewRole[] = ['\\All', '\\Important', '\\Flagged'];
const VIEW_NAMES: Record<ViewRole, readonly string[]> = {
  '\\All': ['All Mail', 'Alle Nachrichten', 'Tous les messages', 'Todos'],
  '\\Important': ['Important', 'Wichtig', 'Importants', 'Importantes'],
  '\\Flagged': ['Starred', 'Markiert', 'Suivis', 'Destacados'],
};
const GMAIL_PARENTS = ['[gmail]', '[google mail]'];

const lower = (s: string) => s.normalize('NFC').toLowerCase();

/**
 * Lower-cased name -> role and its place in that role's list, built once: a tree of a million
 * folders is looked up in a map, not compared with every well-known name. The first role that
 * lists a name keeps it (the order of ROLES decides, as it did before).
 */
const NAME_INDEX = new Map<string, { role: SpecialRole; rank: number }>();
for (const role of ROLES) NAMES[role].forEach((n, rank) => NAME_INDEX.has(lower(n)) || NAME_INDEX.set(lower(n), { role, rank }));
const VIEW_INDEX = new Map<string, ViewRole>();
for (const view of VIEWS) for (const n of VIEW_NAMES[view]) if (!VIEW_INDEX.has(lower(n))) VIEW_INDEX.set(lower(n), view);
/** No well-known name is longer than this (in UTF-16 units, with room for decomposed accents): longer names are not lower-cased at all. */
const LONGEST = 2 * Math.max(...[...NAME_INDEX.keys(), ...VIEW_INDEX.keys(), ...GMAIL_PARENTS].map((n) => n.length));

/** A name's lower-cased form for the lookups, or undefined when it is too long to be a well-known name. */
const lookupKey = (name: string): string | undefined => (name.length > LONGEST ? undefined : lower(name));

function normaliseAttribute(attr: string | undefined): string | undefined {
  if (!attr || attr.length > 16) return undefined;
  const a = attr.toLowerCase();
  return [...ROLES, ...VIEWS].find((r) => r.toLowerCase() === a);
}

const isGmailParent = (segment: string) => {
  const key = lookupKey(segment);
  return key !== undefined && GMAIL_PARENTS.includes(key);
};

/** Where a name may be trusted: top level, or directly under a Gmail parent. */
function nameLevel(path: readonly string[]): string | undefined {
  if (path.length === 1) return path[0];
  if (path.length === 2 && isGmailParent(path[0]!)) return path[1];
  return undefined;
}

/** The role of a folder by its attribute, else by its name; undefined for an ordinary folder. */
export function specialRoleOf(folder: Pick<FolderInfo, 'path' | 'specialUse'>): SpecialRole | undefined {
  const byAttr = normaliseAttribute(folder.specialUse);
  if (byAttr) return (ROLES as string[]).includes(byAttr) ? (byAttr as SpecialRole) : undefined;
  const name = nameLevel(folder.path);
  const key = name === undefined ? undefined : lookupKey(name);
  return key === undefined ? undefined : NAME_INDEX.get(key)?.role;
}

/** The Gmail view a folder is (All Mail, Important, Starred), or undefined. */
export function viewRoleOf(folder: Pick<FolderInfo, 'path' | 'specialUse'>): ViewRole | undefined {
  const byAttr = normaliseAttribute(folder.specialUse);
  if (byAttr) return (VIEWS as string[]).includes(byAttr) ? (byAttr as ViewRole) : undefined;
  if (folder.path.length !== 2 || !isGmailParent(folder.path[0]!)) return undefined;
  const key = lookupKey(folder.path[1]!);
  return key === undefined ? undefined : VIEW_INDEX.get(key);
}

/**
 * Picks, per role, the one folder of a tree that plays it: a server attribute beats a name, an
 * earlier name in the table (the English default) beats a later one, a shorter path beats a
 * longer one. Folders that lose keep their own names.
 */
export function specialFolders(folders: readonly Pick<FolderInfo, 'path' | 'specialUse'>[]): Map<SpecialRole, string[]> {
  const best = new Map<SpecialRole, { path: string[]; rank: number }>();
  for (const f of folders) {
    const role = specialRoleOf(f);
    if (!role) continue;
    const byAttr = !!normaliseAttribute(f.specialUse);
    const key = lookupKey(nameLevel(f.path) ?? '');
    const found = key === undefined ? undefined : NAME_INDEX.get(key);
    const nameRank = found && found.role === role ? found.rank : -1;
    const rank = (byAttr ? 0 : 1000) + (nameRank < 0 ? 999 : nameRank) * 10 + f.path.length;
    const current = best.get(role);
    if (!current || rank < current.rank) best.set(role, { path: [...f.path], rank });
  }
  return new Map([...best].map(([role, v]) => [role, v.path]));
}
