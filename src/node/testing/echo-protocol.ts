/**
 * The test echo protocol: a stand-in for the real protobuf envelopes of codec.ts, so the
 * stream layer and the transports can be tested on their own. A response body is
 * 0x00 + payload, or 0x01 + UTF-8 JSON `{name, message}` for an error frame.
 * Isomorphic: the browser smoke page imports it too.
 */
export const ECHO = '/proofsync-test/1/echo';
/** Held until RELEASE is called; shares ECHO's per-peer limits. */
export const HOLD = '/proofsync-test/1/hold';
export const RELEASE = '/proofsync-test/1/release';
/** Returns `{held}` as JSON: how many HOLD handlers are waiting. */
export const STATS = '/proofsync-test/1/stats';
/** Echo with a token bucket of 3 and no refill. */
export const RATED = '/proofsync-test/1/rated';
/** Throws the error named by the request ("InvalidRequest" is typed, anything else is not). */
export const FAIL = '/proofsync-test/1/fail';

export const ECHO_MAX_REQUEST = 1024;
export const ECHO_TIMEOUT_MS = 1500;
export const ECHO_MAX_CONCURRENT = 4;

const utf8 = new TextEncoder();

export function encodeOk(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 1);
  out.set(payload, 1);
  return out;
}

export function encodeError(name: string, message: string): Uint8Array {
  const json = utf8.encode(JSON.stringify({ name, message }));
  const out = new Uint8Array(json.length + 1);
  out[0] = 1;
  out.set(json, 1);
  return out;
}

export type EchoResponse = { ok: true; payload: Uint8Array } | { ok: false; name: string; message: string };

export function decodeResponse(body: Uint8Array): EchoResponse {
  if (body[0] === 0) return { ok: true, payload: body.subarray(1) };
  if (body[0] === 1) return { ok: false, ...(JSON.parse(new TextDecoder().decode(body.subarray(1))) as { name: string; message: string }) };
  throw new TypeError(`expected a response tag of 0 or 1, got ${body[0]}`);
}
