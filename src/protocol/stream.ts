/**
 * Framed request/response over libp2p 3 streams (docs/design.md "Wire protocols").
 *
 * A frame is an unsigned-varint (LEB128) length followed by that many bytes. A request is one
 * frame from the dialer, a response is one frame back; then both ends close. Remote bytes are
 * hostile: a reader never holds more than `maxBytes` plus the prefix, rejects a frame as soon
 * as its prefix says it is too large, and every exchange has a deadline. The server admits
 * streams per peer (concurrency and a token bucket, see peer-limits.ts) and answers refusals
 * and failures with an error frame built by the caller's `encodeError` (the protobuf envelope
 * lives in codec.ts; this module knows only bytes).
 *
 * libp2p 3 streams are event targets: 'message' carries Uint8Array | Uint8ArrayList chunks,
 * 'remoteCloseWrite' ends the input, 'close' (with `error` on reset/abort) ends the stream.
 * Reading through listeners rather than the async iterator keeps the bound exact: the
 * iterator's internal queue grows without limit while its consumer awaits.
 *
 * One file: `request` and `handle` are the two ends of one framing protocol and share its frame
 * reader and writer, the deadline and the mapping of stream failures to typed errors.
 */
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import { Uint8ArrayList } from 'uint8arraylist';
import { InvalidVarint, MessageTooLarge, ProofsyncError, TruncatedInput, errorClass, registerError } from '../core/errors.ts';
import { PeerLimits, type RateLimit } from './peer-limits.ts';

/**
 * Failures of a stream exchange (not of its content). Match on `name`.
 *
 * @example
 * try {
 *   await request(node, addr, '/proofsync/1/range', req, { maxResponseBytes: 2 << 20 });
 * } catch (err) {
 *   if (err instanceof StreamError && err.name === 'RateLimited') await backOff(peer);
 *   else throw err;
 * }
 */
export class StreamError extends ProofsyncError {
  /** `'StreamError'`; each subclass sets its own. */
  override readonly name: string = 'StreamError';
}
registerError(StreamError, 'StreamError');
const streamError = (name: string) => errorClass(StreamError, name);
/** The exchange did not finish before its deadline. */
export const RequestTimeout = streamError('RequestTimeout');
/** The remote reset or aborted the stream, or the connection closed under it. */
export const StreamReset = streamError('StreamReset');
/** The server refused the stream: this peer opened streams faster than its rate allows. */
export const RateLimited = streamError('RateLimited');
/** The server refused the stream: this peer already has its maximum of streams in flight. */
export const TooManyStreams = streamError('TooManyStreams');
/** The server stopped serving the protocol (the node is stopping) before it could answer. */
export const ServerStopping = streamError('ServerStopping');

/** How long stopping a protocol waits for the answers in flight to be queued (`handle`). */
const STOP_GRACE_MS = 1_000;

/** Longest prefix accepted: 8 bytes encode 2^56, far above any sane frame limit. */
const MAX_PREFIX_BYTES = 8;

/** Encodes `n` as an unsigned LEB128 varint. */
export function encodeVarint(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`expected a non-negative safe integer, got ${n}`);
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Uint8Array.from(out);
}

type Prefix = { length: number; prefixBytes: number } | undefined;

/**
 * Reads a frame length from the start of `buf`. Returns undefined while more bytes are needed.
 * Throws MessageTooLarge as soon as the bytes seen prove the length exceeds `maxBytes`
 * (a canonical varint with k more groups is at least 2^(7k)), InvalidVarint on a
 * non-canonical or over-long prefix.
 */
function decodePrefix(buf: Uint8ArrayList, maxBytes: number): Prefix {
  let value = 0;
  let scale = 1;
  const n = Math.min(buf.byteLength, MAX_PREFIX_BYTES);
  for (let i = 0; i < n; i++) {
    const b = buf.get(i);
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) {
      if (i > 0 && b === 0) throw new InvalidVarint('frame length prefix is not minimally encoded');
      if (value > maxBytes) throw new MessageTooLarge(`frame of ${value} bytes exceeds the limit of ${maxBytes}`, { length: value, maxBytes });
      return { length: value, prefixBytes: i + 1 };
    }
    scale *= 0x80;
    if (value + scale > maxBytes) {
      throw new MessageTooLarge(`frame of at least ${value + scale} bytes exceeds the limit of ${maxBytes}`, { maxBytes });
    }
  }
  if (buf.byteLength >= MAX_PREFIX_BYTES) throw new InvalidVarint(`frame length prefix longer than ${MAX_PREFIX_BYTES} bytes`);
  return undefined;
}

/** The stream surface used here; a libp2p `Stream` satisfies it. */
export type FrameStream = Pick<
  Stream,
  'addEventListener' | 'removeEventListener' | 'send' | 'onDrain' | 'unshift' | 'status' | 'readStatus' | 'remoteWriteStatus' | 'readBufferLength'
>;

export interface ReadFrameOptions {
  /** Largest frame body accepted. */
  maxBytes: number;
  signal?: AbortSignal;
}

function resetError(err: unknown): Error {
  if (err instanceof ProofsyncError) return err;
  const name = (err as Error | undefined)?.name;
  return new StreamReset(`stream closed by ${name ?? 'the remote'} before the frame ended`, { cause: name }, { cause: err });
}

/**
 * Reads one frame body. Bytes after the frame are pushed back onto the stream for the next read.
 *
 * @throws MessageTooLarge, InvalidVarint, TruncatedInput (the remote closed its end mid-frame
 *   or before one), StreamReset (a reset, or the connection ended under the stream), or
 *   `signal.reason` when aborted.
 * @example
 * const body = await readFrame(stream, { maxBytes: 1 << 20, signal: AbortSignal.timeout(5_000) });
 */
export function readFrame(stream: FrameStream, options: ReadFrameOptions): Promise<Uint8Array> {
  const { maxBytes, signal } = options;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RangeError(`expected maxBytes >= 0, got ${maxBytes}`);
  return new Promise<Uint8Array>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    if (stream.status === 'reset' || stream.status === 'aborted') return reject(resetError(undefined));
    const buf = new Uint8ArrayList();
    let prefix: Prefix;
    let done = false;
    /** The remote closed its writable end ('remoteCloseWrite'): what it sent is all it sends. */
    let remoteEnded = false;

    const finish = (err: unknown, frame?: Uint8Array): void => {
      if (done) return;
      done = true;
      stream.removeEventListener('message', onMessage);
      stream.removeEventListener('remoteCloseWrite', onInputEnd);
      stream.removeEventListener('close', onClose);
      signal?.removeEventListener('abort', onAbort);
      if (err !== undefined) reject(err);
      else resolve(frame!);
    };
    const inputEnded = (): boolean =>
      (stream.remoteWriteStatus === 'closed' || stream.readStatus === 'closed') && stream.readBufferLength === 0;
    const truncated = (): Error =>
      prefix
        ? new TruncatedInput(`stream ended after ${buf.byteLength - prefix.prefixBytes} of ${prefix.length} frame bytes`)
        : new TruncatedInput(`stream ended before a frame (${buf.byteLength} prefix bytes)`);

    const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
      if (done) return;
      buf.append(evt.data);
      try {
        prefix ??= decodePrefix(buf, maxBytes);
      } catch (err) {
        return finish(err);
      }
      if (prefix && buf.byteLength >= prefix.prefixBytes + prefix.length) {
        const end = prefix.prefixBytes + prefix.length;
        // Plain Uint8Array (Node hands out Buffers, whose slices alias and compare differently).
        const sub = buf.subarray(prefix.prefixBytes, end);
        const frame = sub.constructor === Uint8Array ? sub : new Uint8Array(sub.buffer, sub.byteOffset, sub.byteLength);
        if (buf.byteLength > end) {
          try {
            stream.unshift(buf.sublist(end));
          } catch {
            // the readable end is closed: nothing can read the surplus anyway
          }
        }
        return finish(undefined, frame);
      }
      if (inputEnded()) finish(truncated());
    };
    const onInputEnd = (): void => {
      remoteEnded = true;
      if (stream.readBufferLength === 0) finish(truncated());
    };
    const onClose = (evt: { error?: Error }): void => {
      if (evt.error) return finish(resetError(evt.error));
      // A close with no error and no 'remoteCloseWrite' before it is the connection ending
      // under the stream (libp2p's muxer closes every stream without an error when its
      // transport closes, a lost or aborted socket included): the remote never said its
      // answer was complete, so this is no answer, not a truncated one.
      finish(remoteEnded ? truncated() : new StreamReset('the connection closed before the frame ended', { cause: 'ConnectionClosed' }));
    };
    const onAbort = (): void => finish(signal!.reason);

    stream.addEventListener('message', onMessage);
    stream.addEventListener('remoteCloseWrite', onInputEnd);
    stream.addEventListener('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (inputEnded()) finish(truncated());
  });
}

/**
 * Writes one frame (prefix + body), waiting for the transport to drain if it asks to.
 *
 * @example
 * await writeFrame(stream, body, { signal });
 */
export async function writeFrame(stream: FrameStream, body: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<void> {
  options.signal?.throwIfAborted();
  const frame = new Uint8ArrayList(encodeVarint(body.byteLength), body);
  if (!stream.send(frame)) await stream.onDrain({ signal: options.signal });
}

/** Builds an abort signal that fires with RequestTimeout after `timeoutMs`, or with `signal`'s reason. */
function deadline(timeoutMs: number, what: string, signal?: AbortSignal): { signal: AbortSignal; clear: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new RequestTimeout(`${what} did not finish within ${timeoutMs} ms`, { timeoutMs })),
    timeoutMs,
  );
  const onAbort = (): void => controller.abort(signal!.reason);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}

export interface RequestOptions {
  /** Largest response body accepted. */
  maxResponseBytes: number;
  /** Deadline for the whole exchange, dial included. Default 10,000 ms. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The libp2p surface `request` needs. */
export type Dialer = Pick<Libp2p, 'dialProtocol'>;

/**
 * Sends one request frame on a new stream and returns the single response frame's body.
 * The response body is whatever the server sent, an error envelope included: decoding it is
 * the codec's job.
 *
 * @throws RequestTimeout, StreamReset, MessageTooLarge, TruncatedInput, dial errors, or
 *   `signal.reason`.
 * @example
 * const res = await request(node, addr, '/proofsync/1/range', req, { maxResponseBytes: 2 << 20 });
 */
export async function request(
  libp2p: Dialer,
  peer: PeerId | Multiaddr | Multiaddr[],
  protocol: string,
  body: Uint8Array,
  options: RequestOptions,
): Promise<Uint8Array> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const dl = deadline(timeoutMs, `request ${protocol}`, options.signal);
  const signal = dl.signal;
  let stream: Stream | undefined;
  try {
    stream = await libp2p.dialProtocol(peer, protocol, { signal });
    signal.throwIfAborted();
    // Listen before writing: a server may refuse (error frame) before reading the request.
    const response = readFrame(stream, { maxBytes: options.maxResponseBytes, signal });
    response.catch(() => {});
    const s = stream;
    let written = false;
    // A failed write surfaces through the read (reset, truncation) or the deadline.
    writeFrame(s, body, { signal })
      .then(() => s.close({ signal }))
      .then(
        () => {
          written = true;
        },
        () => {},
      );
    const result = await response;
    if (!written) s.abort(new StreamReset('response arrived before the request was sent'));
    // One frame is the whole answer: a peer that sends more is cut off at its first extra byte,
    // neither buffered nor granted more window (yamux has no way to stop only our reading).
    else if (s.remoteWriteStatus !== 'closed') s.addEventListener('message', () => s.abort(new StreamReset('bytes after the response frame')), { once: true });
    return result;
  } catch (err) {
    const reason = signal.aborted ? signal.reason : err;
    stream?.abort(reason instanceof Error ? reason : new Error(String(reason)));
    throw reason instanceof ProofsyncError || signal.aborted ? reason : mapStreamError(reason);
  } finally {
    dl.clear();
  }
}

function mapStreamError(err: unknown): unknown {
  const name = (err as Error | undefined)?.name;
  if (name === 'StreamResetError' || name === 'StreamAbortedError' || name === 'StreamClosedError' || name === 'StreamStateError') {
    return new StreamReset(`stream failed: ${(err as Error).message}`, { cause: name }, { cause: err });
  }
  return err;
}

/** What a handler learns about the request besides its bytes. */
export interface HandlerContext {
  peerId: PeerId;
  connection: Connection;
  /** Aborts at the server's deadline; pass it to any I/O. */
  signal: AbortSignal;
}

export type RequestHandler = (request: Uint8Array, context: HandlerContext) => Promise<Uint8Array> | Uint8Array;

export interface HandleOptions {
  /** Largest request body accepted; larger ones get a MessageTooLarge error frame. */
  maxRequestBytes: number;
  /** Deadline from stream open to response sent. Default 10,000 ms. */
  timeoutMs?: number;
  /** Streams one peer may have in flight on this protocol. Default 8. Ignored with `limits`. */
  maxConcurrentPerPeer?: number;
  /** Token bucket per peer. Ignored with `limits`. */
  ratePerPeer?: RateLimit;
  /** Shared admission state, to limit a peer across several protocols at once. */
  limits?: PeerLimits;
  /**
   * Builds the error frame's body from an error name (RateLimited, TooManyStreams,
   * MessageTooLarge, TruncatedInput, InvalidVarint, RequestTimeout, a ProofsyncError's name
   * thrown by the handler, or InternalError) and a message. Without it refusals just close.
   */
  encodeError?: (name: string, message: string) => Uint8Array;
  /** libp2p's own hard cap on inbound streams per connection. Default 64. */
  maxInboundStreams?: number;
  /** Receives errors worth logging: handler crashes (anything but a ProofsyncError). */
  onError?: (err: unknown, context: { peerId: PeerId; protocol: string }) => void;
  /** Told of every stream refused or cut before an answer, with why (for metrics). */
  onRefused?: (reason: RefusalReason, context: { peerId: PeerId; protocol: string }) => void;
}

/**
 * Why a served stream ended without an answer: admission (`RateLimited`, `TooManyStreams`),
 * a bad request frame (`MessageTooLarge`, `InvalidVarint`, `TruncatedInput`), the deadline
 * (`RequestTimeout`), more unread bytes than the stream may buffer (`BufferFull`), or a reset
 * by the peer (`StreamReset`).
 */
export type RefusalReason =
  | 'RateLimited'
  | 'TooManyStreams'
  | 'MessageTooLarge'
  | 'InvalidVarint'
  | 'TruncatedInput'
  | 'RequestTimeout'
  | 'BufferFull'
  | 'StreamReset';

/** The refusal reason of a stream that closed under its reader. */
function closeReason(err: unknown): RefusalReason {
  const e = err as { name?: string; cause?: unknown; details?: { cause?: unknown } } | undefined;
  // libp2p aborts a stream whose unread bytes pass maxReadBufferLength with StreamBufferError
  if (e?.name === 'StreamBufferError' || e?.details?.cause === 'StreamBufferError') return 'BufferFull';
  if (e?.name === 'RequestTimeout') return 'RequestTimeout';
  return 'StreamReset';
}

/** The libp2p surface `handle` needs. */
export type Registrar = Pick<Libp2p, 'handle' | 'unhandle'>;

/** Errors a client can act on are named to it; anything else is an InternalError. */
function errorForClient(err: unknown): { name: string; message: string } {
  if (err instanceof ProofsyncError) return { name: err.name, message: err.message };
  return { name: 'InternalError', message: 'the server failed to handle the request' };
}

/**
 * Serves `protocol`: one request frame in, `handler`'s bytes out as one frame. Admission,
 * size, and deadline are enforced before the handler runs. Returns a function that unregisters,
 * answering the requests still in flight with `ServerStopping` first (within a second): a
 * stopping node then closes its connections, and a stream closed without an answer reads as
 * a truncated one at the client.
 *
 * @example
 * const stop = await handle(node, '/proofsync/1/range', serveRange, {
 *   maxRequestBytes: 4096, timeoutMs: 10_000, maxConcurrentPerPeer: 4,
 *   ratePerPeer: { burst: 20, perSecond: 10 }, encodeError,
 * });
 */
export async function handle(libp2p: Registrar, protocol: string, handler: RequestHandler, options: HandleOptions): Promise<() => Promise<void>> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const limits = options.limits ?? new PeerLimits({ maxConcurrent: options.maxConcurrentPerPeer ?? 8, rate: options.ratePerPeer });
  // Bytes buffered while nobody listens: a frame's worth plus its prefix.
  const maxBuffered = options.maxRequestBytes + MAX_PREFIX_BYTES;

  const sendError = async (stream: Stream, name: string, message: string, signal: AbortSignal): Promise<void> => {
    if (!options.encodeError || stream.writeStatus !== 'writable') {
      stream.abort(new StreamReset(`${name}: ${message}`));
      return;
    }
    try {
      await writeFrame(stream, options.encodeError(name, message), { signal });
      // Discard whatever else the peer sends; yamux cannot tell it to stop, it just drops.
      await stream.closeRead({ signal }).catch(() => {});
      await stream.close({ signal });
    } catch (err) {
      stream.abort(err instanceof Error ? err : new StreamReset(String(err)));
    }
  };

  /** Aborted when the protocol stops: requests in flight get a ServerStopping answer. */
  const stopping = new AbortController();
  const inFlight = new Set<Promise<void>>();

  const onStream = async (stream: Stream, connection: Connection): Promise<void> => {
    const peerId = connection.remotePeer;
    stream.maxReadBufferLength = Math.min(stream.maxReadBufferLength, maxBuffered);
    // The handler's signal also fires when the peer goes away, so abandoned work stops.
    const gone = new AbortController();
    const onClose = (evt: { error?: Error }): void => gone.abort(resetError(evt.error));
    stream.addEventListener('close', onClose, { once: true });
    const dl = deadline(timeoutMs, `serving ${protocol}`, gone.signal);
    const signal = dl.signal;
    // reading and handling also end when the protocol stops; the answer's write does not
    const work = AbortSignal.any([signal, stopping.signal]);
    const admission = limits.admit(peerId.toString());
    const refused = (reason: RefusalReason): void => options.onRefused?.(reason, { peerId, protocol });
    try {
      if (!admission.ok) {
        refused(admission.reason);
        const message =
          admission.reason === 'RateLimited'
            ? `too many requests: retry after ${admission.retryAfterMs ?? 'a while'} ms`
            : `at most ${limits.maxConcurrent} streams in flight per peer`;
        await sendError(stream, admission.reason, message, signal);
        return;
      }
      let req: Uint8Array;
      try {
        req = await readFrame(stream, { maxBytes: options.maxRequestBytes, signal: work });
      } catch (err) {
        if (work.aborted) {
          // a slow or silent peer: cut it, do not spend more on it (a stop cuts it too)
          if (signal.aborted) refused(closeReason(signal.reason));
          stream.abort(work.reason);
        } else if (err instanceof MessageTooLarge || err instanceof InvalidVarint || err instanceof TruncatedInput) {
          refused(err.name as RefusalReason);
          await sendError(stream, err.name, err.message, signal);
        } else {
          refused(closeReason(err));
          stream.abort(err instanceof Error ? err : new StreamReset(String(err)));
        }
        return;
      }
      let res: Uint8Array;
      try {
        // a stream reset between the read and here: no work for a peer that has gone
        work.throwIfAborted();
        res = await raceAbort(Promise.resolve().then(() => handler(req, { peerId, connection, signal: work })), work);
      } catch (err) {
        if (signal.aborted) refused(closeReason(signal.reason));
        // A typed error is the request's fault and is answered as such; logging each one
        // would let any peer write to the node's log at its request rate. Crashes are logged.
        if (!work.aborted && !(err instanceof ProofsyncError)) options.onError?.(err, { peerId, protocol });
        // a stop answers too: the connection's close would end the stream without a frame,
        // which the client takes for a truncated answer (an invalid one, a strike)
        const { name, message } = work.aborted ? errorForClient(work.reason) : errorForClient(err);
        // the deadline is spent; give the error frame a short grace of its own
        const grace = deadline(1_000, `error frame on ${protocol}`);
        try {
          await sendError(stream, name, message, grace.signal);
        } finally {
          grace.clear();
        }
        return;
      }
      try {
        await writeFrame(stream, res, { signal });
        await stream.close({ signal });
      } catch (err) {
        stream.abort(err instanceof Error ? err : new StreamReset(String(err)));
      }
    } finally {
      dl.clear();
      stream.removeEventListener('close', onClose);
      if (admission.ok) admission.release();
    }
  };

  await libp2p.handle(
    protocol,
    (stream, connection) => {
      const served = onStream(stream, connection).catch((err: unknown) => {
        try {
          stream.abort(err instanceof Error ? err : new StreamReset(String(err)));
        } catch {
          // the stream is already closed: nothing left to cut
        }
      });
      inFlight.add(served);
      void served.finally(() => inFlight.delete(served));
    },
    { maxInboundStreams: options.maxInboundStreams ?? 64 },
  );
  return async () => {
    stopping.abort(new ServerStopping(`the node stopped serving ${protocol}`));
    // the answers in flight are queued before the caller closes the connections under them
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.allSettled([...inFlight]), new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_GRACE_MS)))]);
    clearTimeout(timer);
    await libp2p.unhandle(protocol);
  };
}

/**
 * Resolves with `p` or rejects with `signal.reason`, whichever is first. `p` always gets a
 * rejection handler: once the race is lost nobody awaits it, and a handler failing after a
 * reset (a peer's doing) must not become an unhandled rejection that ends the process.
 */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
