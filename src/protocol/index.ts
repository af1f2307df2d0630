// The public surface of the wire protocol: re-exports only (docs/style.md).
export * from './codec.ts';
export { serveRangeProof, serveChangeProof, MAX_KEY_LIMIT, MAX_BYTE_LIMIT } from './serve.ts';
export { request, handle, readFrame, writeFrame, StreamError, RequestTimeout, StreamReset, RateLimited, TooManyStreams, ServerStopping } from './stream.ts';
