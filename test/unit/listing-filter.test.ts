import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listingWanted } from '../../src/stores/local/listing-filter.js';

const uids = [1, 2, 5, 9, 12];
const pick = (o: Parameters<typeof listingWanted>[0]) => uids.filter(listingWanted(o));

test('a local listing request: everything, from sinceUid on, only the named UIDs, or both', () => {
  assert.deepEqual(pick({}), uids);
  assert.deepEqual(pick({ sinceUid: 5 }), [5, 9, 12]);
  assert.deepEqual(pick({ uids: [2, 9, 40] }), [2, 9]);
  assert.deepEqual(pick({ sinceUid: 6, uids: [2, 9, 12] }), [9, 12]);
  assert.deepEqual(pick({ uids: [] }), [], 'an empty list names nothing');
});
