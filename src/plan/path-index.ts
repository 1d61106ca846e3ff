/**
 * Numbers for folder paths and all their prefixes, so that "is there a folder below this one" and
 * "is this parent already in the plan" are set lookups. Each path is walked once, level by level:
 * a level's number is found from its parent's number and its own segment, so the work is the
 * length of the path, never the square of its depth (no prefix is joined into a string).
 *
 * The first level compares "INBOX" case-insensitively (RFC 3501 §5.1), as startsWithPath does.
 */
export class PathIndex {
  private readonly ids = new Map<string, number>();
  private next = 1;

  /** The numbers of every prefix of `path`: element k is the number of path[0..k]. */
  prefixes(path: readonly string[]): number[] {
    const out = new Array<number>(path.length);
    let parent = 0;
    for (let i = 0; i < path.length; i++) {
      const segment = i === 0 && path[0]!.length === 5 && path[0]!.toUpperCase() === 'INBOX' ? 'INBOX' : path[i]!;
      const key = `${parent}\u0000${segment}`;
      let id = this.ids.get(key);
      if (id === undefined) {
        id = this.next++;
        this.ids.set(key, id);
      }
      out[i] = id;
      parent = id;
    }
    return out;
  }
}
