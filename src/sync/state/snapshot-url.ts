/**
 * A static proof mirror's base URL (state/http-source.ts), checked and normalised. Its own
 * module so the page's thread can check the light client's options without loading the codecs.
 */

/**
 * `base` without trailing slashes; it must be an absolute http(s) URL without query or fragment.
 *
 * @example
 * snapshotBase('https://cdn.example.com/mydb/'); // 'https://cdn.example.com/mydb'
 */
export function snapshotBase(base: string): string {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new TypeError(`expected an absolute http(s) URL for a snapshot mirror, got ${JSON.stringify(base)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`expected an http(s) URL for a snapshot mirror, got ${url.protocol}`);
  if (url.search || url.hash) throw new TypeError(`expected a snapshot mirror URL without query or fragment, got ${base}`);
  return url.href.replace(/\/+$/, '');
}

