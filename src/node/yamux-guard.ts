/**
 * Yamux with the node's bounds (docs/design.md "From the lab to the internet").
 *
 * The Yamux spec makes a data frame longer than its stream's receive window a protocol error,
 * but `@chainsafe/libp2p-yamux` (8.0.1) buffers a data frame up to its declared length (a
 * 32-bit field: up to 4 GiB) before it compares the length with the window: one stream that
 * declares a 500 MiB frame and sends it took a node's RSS past 700 MB. The guard below reads
 * each frame header as soon as its 12 bytes are buffered and ends the connection (GoAway with
 * ProtocolError) when a data frame is longer than the receive window the spec allows it, so
 * at most one window (`maxStreamWindowSize`) is ever buffered per connection.
 *
 * Why a guard here and not a patched dependency: users who install proofsync from npm get the
 * dependency as published, without our patches; the guard works on whatever Yamux they get.
 * It reaches into two internals (the muxer's `decoder` and its `readFrame`, the muxer's
 * `incomingStream`); `guardedYamux` checks they exist and throws at the first connection if
 * an upgrade renamed them, and yamux-guard.test.ts fails too, so the guard never silently
 * switches off.
 *
 * It also counts the inbound streams Yamux resets for passing `maxInboundStreams`.
 */
import { yamux, type YamuxMuxerInit } from '@chainsafe/libp2p-yamux';
import type { StreamMuxerFactory } from '@libp2p/interface';
import { ProofsyncError, errorClass, registerError } from '../core/errors.ts';

/** The remote broke the muxer's rules; the connection is closed. */
export class MuxerError extends ProofsyncError {
  /** `'MuxerError'`; each subclass sets its own. */
  override readonly name: string = 'MuxerError';
}
registerError(MuxerError, 'MuxerError');
/** A data frame declared more bytes than the stream's receive window allows. */
export const FrameTooLarge = errorClass(MuxerError, 'FrameTooLarge');

/** The spec's initial window: every stream starts with it (spec: "initial window size 256 KiB"). */
export const INITIAL_STREAM_WINDOW = 256 * 1024;

export interface MuxerLimits {
  /** Inbound streams open at once per connection; Yamux resets the rest. Default 128. */
  maxInboundStreams?: number;
  /** Outbound streams per connection. Default 128. */
  maxOutboundStreams?: number;
  /**
   * Largest receive window a stream may grow to, and so the largest data frame accepted.
   * Default 4 MiB: a 2 MiB proof response in flight twice over; Yamux's own default is 16 MiB.
   */
  maxStreamWindowSize?: number;
  /**
   * Unread bytes a stream may buffer before libp2p resets it (before a protocol handler
   * reads; our handlers then lower it to their request limit). Default 1 MiB (libp2p: 4 MiB).
   */
  maxReadBufferLength?: number;
  /** Told when a connection is closed for an oversize frame, or an inbound stream reset for passing the limit. */
  onRefused?: (reason: 'frame_too_large' | 'too_many_streams') => void;
}

export const MUXER_DEFAULTS = {
  maxInboundStreams: 128,
  maxOutboundStreams: 128,
  maxStreamWindowSize: 4 * 1024 * 1024,
  maxReadBufferLength: 1024 * 1024,
} as const;

const HEADER_LENGTH = 12;
const TYPE_DATA = 0;
const FLAG_SYN = 1;
const GO_AWAY_PROTOCOL_ERROR = 1;

interface FrameBuffer {
  byteLength: number;
  get(i: number): number;
}
/** The parts of `YamuxMuxer` the guard uses: not in its public types. */
interface MuxerInternals {
  decoder: { buffer: FrameBuffer; readFrame: () => unknown };
  streams: { streamId: number; recvWindowCapacity?: unknown }[];
  incomingStream: (id: number) => void;
  numInboundStreams: number;
  maxInboundStreams: number;
  localGoAway: unknown;
}

/**
 * The bound on a data frame for `streamId`: the stream's receive window left, or the initial
 * window for a stream the frame opens (SYN). A frame for a stream already gone (reset here
 * while the peer's frames were in flight) is dropped by Yamux, but may be as long as any
 * window: up to `maxWindow`.
 */
function frameBound(m: MuxerInternals, streamId: number, flags: number, maxWindow: number): number {
  const stream = m.streams.find((s) => s.streamId === streamId);
  if (stream) return typeof stream.recvWindowCapacity === 'number' ? Math.min(stream.recvWindowCapacity, maxWindow) : maxWindow;
  return (flags & FLAG_SYN) === FLAG_SYN ? INITIAL_STREAM_WINDOW : maxWindow;
}

function guard(muxer: unknown, limits: Required<Omit<MuxerLimits, 'onRefused'>> & Pick<MuxerLimits, 'onRefused'>): void {
  const m = muxer as MuxerInternals;
  if (typeof m.decoder?.readFrame !== 'function' || !m.decoder.buffer || !Array.isArray(m.streams) || typeof m.incomingStream !== 'function') {
    throw new TypeError('the Yamux guard does not fit this @chainsafe/libp2p-yamux: update src/node/yamux-guard.ts');
  }
  const decoder = m.decoder;
  const readFrame = decoder.readFrame.bind(decoder);
  decoder.readFrame = () => {
    const buf = decoder.buffer;
    if (buf.byteLength >= HEADER_LENGTH && buf.get(1) === TYPE_DATA) {
      const flags = (buf.get(2) << 8) | buf.get(3);
      const streamId = buf.get(4) * 2 ** 24 + ((buf.get(5) << 16) | (buf.get(6) << 8) | buf.get(7));
      const length = buf.get(8) * 2 ** 24 + ((buf.get(9) << 16) | (buf.get(10) << 8) | buf.get(11));
      const bound = frameBound(m, streamId, flags, limits.maxStreamWindowSize);
      if (length > bound) {
        limits.onRefused?.('frame_too_large');
        // thrown out of the muxer's onData: libp2p aborts the muxer and the connection;
        // `reason` makes Yamux's GoAway say ProtocolError
        throw Object.assign(new FrameTooLarge(`data frame of ${length} bytes on stream ${streamId} exceeds its receive window of ${bound}`, { length, bound, streamId }), {
          reason: GO_AWAY_PROTOCOL_ERROR,
        });
      }
    }
    return readFrame();
  };
  const incomingStream = m.incomingStream.bind(m);
  m.incomingStream = (id: number) => {
    if (m.localGoAway === undefined && m.numInboundStreams >= m.maxInboundStreams && !m.streams.some((s) => s.streamId === id)) {
      limits.onRefused?.('too_many_streams');
    }
    incomingStream(id);
  };
}

/**
 * `yamux()` with the node's bounds and the oversize-frame guard.
 *
 * @example
 * createLibp2p({ streamMuxers: [guardedYamux({ onRefused: (r) => refused.inc({ reason: r }) })], ... });
 */
export function guardedYamux(limits: MuxerLimits = {}, init: YamuxMuxerInit = {}): () => StreamMuxerFactory {
  const l = {
    maxInboundStreams: limits.maxInboundStreams ?? MUXER_DEFAULTS.maxInboundStreams,
    maxOutboundStreams: limits.maxOutboundStreams ?? MUXER_DEFAULTS.maxOutboundStreams,
    maxStreamWindowSize: limits.maxStreamWindowSize ?? MUXER_DEFAULTS.maxStreamWindowSize,
    maxReadBufferLength: limits.maxReadBufferLength ?? MUXER_DEFAULTS.maxReadBufferLength,
    onRefused: limits.onRefused,
  };
  if (l.maxStreamWindowSize < INITIAL_STREAM_WINDOW) throw new RangeError(`expected maxStreamWindowSize >= ${INITIAL_STREAM_WINDOW}, got ${l.maxStreamWindowSize}`);
  const inner = yamux({
    ...init,
    maxInboundStreams: l.maxInboundStreams,
    maxOutboundStreams: l.maxOutboundStreams,
    streamOptions: { ...init.streamOptions, maxStreamWindowSize: l.maxStreamWindowSize, maxReadBufferLength: l.maxReadBufferLength },
  });
  return () => {
    const factory = inner();
    const create = factory.createStreamMuxer.bind(factory);
    factory.createStreamMuxer = (maConn) => {
      const muxer = create(maConn);
      guard(muxer, l);
      return muxer;
    };
    return factory;
  };
}
