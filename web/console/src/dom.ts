/**
 * DOM building for the console. Every text goes in with textContent (through `el`'s string
 * children): names, subjects and server answers come from mail servers and mailboxes and are
 * hostile input, so no HTML string is ever parsed (no innerHTML anywhere in the page).
 */
export type Child = Node | string | number | null | undefined | false;

/** An element with attributes and children; strings become text nodes. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | undefined> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) e.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(typeof c === 'number' ? String(c) : c);
  return e;
}

/** Replaces a node's children. */
export function put(parent: Element, ...children: Child[]): void {
  parent.replaceChildren(...children.filter((c): c is Node | string | number => c !== null && c !== undefined && c !== false).map((c) => (typeof c === 'number' ? String(c) : c)));
}

/**
 * Documentation text (Markdown from docs/errors.md) as nodes: `code spans` become <code>, the
 * rest plain text; paragraphs as <p>. Nothing else of Markdown is interpreted.
 */
export function docText(text: string): Node[] {
  return text.split('\n\n').map((para) =>
    el('p', {}, ...para.split(/(`[^`]+`)/).map((part) => (part.startsWith('`') && part.endsWith('`') && part.length > 1 ? el('code', {}, part.slice(1, -1)) : part))),
  );
}

export const fmt = (n: number): string => n.toLocaleString('en-US');

/** 75 -> "1 min 15 s". */
export function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/** An ISO time in the viewer's time zone. */
export function when(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'medium' }) : '—';
}

/** A link inside the page (hash route). */
export function route(...parts: (string | number)[]): string {
  return '#/' + parts.map((p) => encodeURIComponent(String(p))).join('/');
}
