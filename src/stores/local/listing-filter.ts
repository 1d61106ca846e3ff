/**
 * Which UIDs a local store's `listMessages` lists: those from `sinceUid` on, and only those named
 * in `uids` when it is given (the engine's incremental and re-listing requests).
 */
export interface ListingRequest {
  sinceUid?: number;
  uids?: readonly number[];
}

/** A predicate for one listing request; the `uids` set is built once. */
export function listingWanted(options: ListingRequest): (uid: number) => boolean {
  const only = options.uids ? new Set(options.uids) : undefined;
  const since = options.sinceUid;
  return (uid) => (since === undefined || uid >= since) && (only === undefined || only.has(uid));
}
