/**
 * Raw MAPI properties of a pst-extractor object. pst-extractor names the common properties as
 * getters; a few that mail needs (the flag status, the SMTP addresses of Exchange senders, the
 * store's record key and password) it reads only through its protected getIntItem/getStringItem
 * and its property table, which this narrow view reaches (the names are its published .d.ts).
 */
interface RawObject {
  getIntItem(id: number, def?: number): number;
  getStringItem(id: number): string;
  pstTableItems?: Map<number, { data: Buffer; isExternalValueReference?: boolean; entryValueReference: number }> | null;
  localDescriptorItems?: Map<number, { getData(): Buffer }> | null;
}

export interface ItemProps {
  int(id: number): number;
  string(id: number): string;
  /** A binary property's bytes (inline or in a sub-node), or undefined when absent. */
  binary(id: number): Buffer | undefined;
}

export function itemProps(obj: object): ItemProps {
  const raw = obj as unknown as RawObject;
  return {
    int: (id) => raw.getIntItem(id, 0),
    string: (id) => raw.getStringItem(id) ?? '',
    binary: (id) => {
      const item = raw.pstTableItems?.get(id);
      if (!item) return undefined;
      if (item.data.length > 0) return item.data;
      return raw.localDescriptorItems?.get(item.entryValueReference)?.getData();
    },
  };
}
