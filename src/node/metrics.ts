/**
 * The node's Prometheus metrics (commits, proofs served, bytes, errors, peers, latency
 * histograms), on a registry of its own (never prom-client's global one, so several nodes in
 * one process, as in tests, do not collide). Served at `GET /metrics` by http-api.ts.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class NodeMetrics {
  readonly registry = new Registry();
  readonly commits: Counter<never>;
  readonly commitSeconds: Histogram<never>;
  readonly committedKeys: Counter<never>;
  readonly requests: Counter<'protocol' | 'outcome'>;
  readonly responseBytes: Counter<'protocol'>;
  readonly errors: Counter<'protocol' | 'name'>;
  readonly requestSeconds: Histogram<'protocol'>;
  readonly peers: Gauge<never>;
  readonly logSize: Gauge<never>;
  readonly seq: Gauge<never>;
  readonly connectionsRefused: Counter<'reason'>;
  readonly websocketProtocolErrors: Counter<'code'>;
  readonly websocketSockets: Gauge<never>;
  readonly streamsRefused: Counter<'protocol' | 'reason'>;
  readonly muxerRefused: Counter<'reason'>;
  readonly httpErrors: Counter<'status' | 'error'>;
  readonly webrtcHandshakesRefused: Counter<'reason'>;
  readonly webrtcHandshakesPending: Gauge<never>;
  readonly gossipMessages: Counter<'result' | 'reason'>;
  readonly proofCacheHits: Counter<never>;
  readonly proofCacheMisses: Counter<never>;
  readonly proofCacheEvictions: Counter<never>;
  readonly proofCacheBytes: Gauge<never>;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.commits = new Counter({ name: 'proofsync_commits_total', help: 'Commits written', registers });
    this.committedKeys = new Counter({ name: 'proofsync_committed_keys_total', help: 'Puts and deletes committed', registers });
    this.commitSeconds = new Histogram({
      name: 'proofsync_commit_duration_seconds',
      help: 'Time to commit one batch (trie, history, delta, log, announcement)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.requests = new Counter({
      name: 'proofsync_requests_total',
      help: 'Requests handled, by protocol and outcome (ok or error)',
      labelNames: ['protocol', 'outcome'],
      registers,
    });
    this.responseBytes = new Counter({
      name: 'proofsync_response_bytes_total',
      help: 'Bytes of successful responses, by protocol',
      labelNames: ['protocol'],
      registers,
    });
    this.errors = new Counter({
      name: 'proofsync_errors_total',
      help: 'Error responses, by protocol and error name',
      labelNames: ['protocol', 'name'],
      registers,
    });
    this.requestSeconds = new Histogram({
      name: 'proofsync_request_duration_seconds',
      help: 'Time to build a response, by protocol',
      labelNames: ['protocol'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.peers = new Gauge({ name: 'proofsync_peers', help: 'Connected peers', registers });
    this.logSize = new Gauge({ name: 'proofsync_log_size', help: 'Operations in the history log', registers });
    this.seq = new Gauge({ name: 'proofsync_announcement_seq', help: 'Sequence number of the newest announcement', registers });
    this.connectionsRefused = new Counter({
      name: 'proofsync_connections_refused_total',
      help: 'Inbound connections refused or cut by a limit, by reason (total, per_ip, handshake_timeout, upgrade_timeout, connection_manager, gater, accept_error; ws-guard.ts)',
      labelNames: ['reason'],
      registers,
    });
    this.websocketProtocolErrors = new Counter({
      name: 'proofsync_websocket_protocol_errors_total',
      help: 'WebSockets terminated for breaking the protocol (malformed or oversized frames), by ws error code',
      labelNames: ['code'],
      registers,
    });
    this.websocketSockets = new Gauge({ name: 'proofsync_websocket_sockets', help: 'Open TCP sockets on the WebSocket listener', registers });
    this.streamsRefused = new Counter({
      name: 'proofsync_streams_refused_total',
      help: 'Served streams refused or cut before an answer, by protocol and reason (RateLimited, TooManyStreams, MessageTooLarge, InvalidVarint, TruncatedInput, RequestTimeout, BufferFull, StreamReset)',
      labelNames: ['protocol', 'reason'],
      registers,
    });
    this.muxerRefused = new Counter({
      name: 'proofsync_muxer_refused_total',
      help: 'Yamux refusals: connections closed for a data frame over its receive window (frame_too_large), inbound streams reset past the per-connection limit (too_many_streams)',
      labelNames: ['reason'],
      registers,
    });
    this.httpErrors = new Counter({
      name: 'proofsync_http_errors_total',
      help: 'HTTP API requests refused or failed, by status and error name',
      labelNames: ['status', 'error'],
      registers,
    });
    this.webrtcHandshakesRefused = new Counter({
      name: 'proofsync_webrtc_direct_handshakes_refused_total',
      help: 'WebRTC-Direct handshakes refused (reason total or per_ip: too many in flight) or closed unfinished (reason expired)',
      labelNames: ['reason'],
      registers,
    });
    this.webrtcHandshakesPending = new Gauge({ name: 'proofsync_webrtc_direct_handshakes_pending', help: 'WebRTC-Direct handshakes in flight', registers });
    this.gossipMessages = new Counter({
      name: 'proofsync_gossip_messages_total',
      help: 'Gossip messages of the database topic by verdict (accept, reject, ignore) and reason; rejected ones are never forwarded',
      labelNames: ['result', 'reason'],
      registers,
    });
    this.proofCacheHits = new Counter({
      name: 'proofsync_proof_cache_hits_total',
      help: 'Range proof requests at a checkpoint root answered from the proof cache (or from a build another peer started)',
      registers,
    });
    this.proofCacheMisses = new Counter({
      name: 'proofsync_proof_cache_misses_total',
      help: 'Range proof requests at a checkpoint root whose answer was built (and then kept)',
      registers,
    });
    this.proofCacheEvictions = new Counter({
      name: 'proofsync_proof_cache_evictions_total',
      help: 'Answers dropped from the proof cache to make room (least recently used first)',
      registers,
    });
    this.proofCacheBytes = new Gauge({ name: 'proofsync_proof_cache_bytes', help: 'Bytes held by the proof cache (answers, requests, per-entry overhead)', registers });
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'proofsync_process_' });
  }
}
