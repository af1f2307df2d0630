/**
 * The page's store reader keeps its own copies of the schema's version and the value key's
 * prefix (importing schema.ts would put `idb` in the page's bundle): they must not drift. Its
 * IndexedDB behaviour is tested in Chromium (e2e/idb.test.ts "StoreReader").
 */
import { describe, expect, it } from 'vitest';
import { valueKey } from '../../core/node-record.ts';
import { PAGE_META_KEY, SCHEMA_VERSION } from './schema.ts';
import { READER_META_KEY, READER_SCHEMA_VERSION, READER_VALUE_PREFIX } from './store-reader.ts';

describe('StoreReader constants', () => {
  it('equal the schema and the trie layout', () => {
    expect(READER_SCHEMA_VERSION).toBe(SCHEMA_VERSION);
    expect(READER_META_KEY).toBe(PAGE_META_KEY);
    const key = new Uint8Array([1, 2]);
    expect(valueKey(key)).toEqual(new Uint8Array([READER_VALUE_PREFIX, 1, 2]));
  });
});
