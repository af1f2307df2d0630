/** How the demo page writes numbers, bytes, ids and durations (fixed shapes: no layout jumps). */

const count = new Intl.NumberFormat('en');

export const formatCount = (n: number): string => count.format(Math.round(n));

export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ['KB', 'MB', 'GB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[u]}`;
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** `abcdef…7890`: the start and end of a hex string. */
export const shortHex = (hex: string, head = 8, tail = 6): string => (hex.length <= head + tail + 1 ? hex : `${hex.slice(0, head)}…${hex.slice(-tail)}`);

/** A peer id's recognisable end (`…f8j`): they all start with 12D3KooW. */
export const shortPeer = (id: string): string => `…${id.slice(-6)}`;

export const clock = (t = Date.now()): string => new Date(t).toLocaleTimeString('en-GB', { hour12: false });

const HEX = /^[0-9a-f]*$/;

/** Parses user-typed hex (spaces and a 0x prefix allowed); throws a message the page shows. */
export function parseHexInput(text: string): Uint8Array {
  const clean = text.trim().toLowerCase().replace(/^0x/, '').replace(/\s+/g, '');
  if (clean.length === 0) throw new RangeError('type a key in hex');
  if (!HEX.test(clean)) throw new RangeError('a key is hex digits only (0-9, a-f)');
  if (clean.length % 2) throw new RangeError(`a key is whole bytes: ${clean.length} hex digits is odd`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Sizes a canvas's backing store to its CSS box at the device pixel ratio; its 2D context and size. */
export function fitCanvas(canvas: HTMLCanvasElement): { g: CanvasRenderingContext2D; w: number; h: number; dpr: number } | undefined {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const g = canvas.getContext('2d');
  return g ? { g, w, h, dpr } : undefined;
}
