/**
 * The replica full node: `proofsync node --follow WRITER --bootstrap ADDR` syncs the writer's
 * state from untrusted nodes, then serves it and follows the writer's deltas, so light clients
 * can spread their requests over many replicas.
 *
 * 1. **Sync** (docs/design.md "The sync flow" 1–2): the newest announcement verified against the
 *    writer key, and a state sync into the node's LevelDB from every serving peer
 *    (writer-sync.ts). Progress is the engine's, stored with the data: a restart resumes.
 * 2. **Finish**: one batch clears the sync progress and the history window (its roots no
 *    longer describe the state) and records what the state is (follow-record.ts); the
 *    `MerkleDatabase` is opened again over the store and served.
 * 3. **Follow** (steps 3–4): verified gossip deltas go into a `DeltaDag`; ready ones are
 *    committed through `MerkleDatabase.commit` with the new `follow` record (and the log
 *    operation, when the log is contiguous) in the same batch, and their `stateRoot` checked,
 *    so the history window holds the writer's roots and change proofs can be served. Missing
 *    parents, and announced heads not yet held, are fetched with `fillGaps` over /delta from
 *    the peer that sent the gossip. A gap past `maxGap`, a peer lacking deltas, a root
 *    mismatch or a delta pending longer than `pendingTimeoutMs` → **catch-up**: a change-proof
 *    sync to the newest announcement, with serving held off (the sync writes the store
 *    underneath the database), then step 2 again; covered and expired pending deltas are
 *    dropped (pending deltas never wait forever). Pending deltas are held in memory only: after
 *    a restart gap filling fetches them again from the newest announcement's heads.
 * 4. **Log**: operations the replica skipped (before its first sync, across a catch-up) are
 *    fetched over /log and appended, so /delta and /log serve the writer's history.
 *
 * When to apply, fill a gap or catch up, and which phase the replica is in, is the follow
 * policy's (src/sync/follow/policy.ts), as for the browser follower: the replica feeds it what
 * happened and carries out its actions. One task at a time runs the follow loop (`#kick`):
 * applying, gap filling, catching up and log filling never interleave.
 *
 * One file: the four steps share one follow loop that runs one task at a time (`#kick`) and the
 * state it guards; the parts without that state are beside it (writer-sync.ts,
 * follow-record.ts, replica-sources.ts, replica-types.ts).
 */
import type { PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { VerifiedAnnouncement } from '../core/announcement.ts';
import { isAnnouncementTag } from '../core/announcement.ts';
import { equalBytes, toHex } from '../core/bytes.ts';
import { DeltaDag } from '../core/dag.ts';
import { MerkleDatabase } from '../core/database.ts';
import { decodeDelta, DELTA_TAG, encodeDelta, verifyDelta, type VerifiedDelta } from '../core/delta.ts';
import type { BatchOp } from '../core/store.ts';
import { fillGaps } from '../sync/gap-fill.ts';
import { clearProgressOps, loadProgress } from '../sync/state/stored-progress.ts';
import { delay } from '../sync/abort.ts';
import { FollowPolicy, type FillOutcome, type FollowAction } from '../sync/follow/policy.ts';
import { decodeFollow, encodeFollow, FOLLOW_KEY, type FollowRecord } from './follow-record.ts';
import { DELTA_PREFIX, LOG_PREFIX, underPrefix, WRITER_PREFIX } from './node-store.ts';
import type { OperationLog } from './operation-log.ts';
import { deltaSource, fillLog } from './replica-sources.ts';
import type { ReplicaOptions, ReplicaPhase, ReplicaStatus } from './replica-types.ts';
import { WriterSync } from './writer-sync.ts';
import { ChangeRecorder, checkpointHistoryOps, nextRevisionOp, type RecordedChanges } from './checkpoint-history.ts';

const HISTORY_PREFIX = 0x68; // 'h': database.ts's revision records

export class Replica {
  readonly #o: ReplicaOptions;
  readonly #writerKey: Uint8Array;
  readonly #writerId: string;
  readonly #life = new AbortController();
  readonly #log: (line: string) => void;
  readonly #timeoutMs: number;
  /** Before the first sync or the first follow; then the policy's mode says the phase. */
  #starting = true;
  #stopped = false;
  /** The follow policy; no grace (the loop looks for gaps on its own tick) and no wait after a failed fill (a catch-up follows). */
  readonly #policy = new FollowPolicy({ retryMs: 0, maxRetryMs: 0 });
  /** The policy's actions still to carry out, in the follow loop's next round. */
  #todo: FollowAction[] = [];
  #db: MerkleDatabase | undefined;
  #dag = new DeltaDag();
  readonly #writer: WriterSync;
  #appliedLogSize = 0;
  /** The peer that last gossiped to us (asked for missing parents first). */
  #lastSender: PeerId | undefined;
  #stats = { deltasApplied: 0, gapFills: 0 };
  #busy = false;
  #working: Promise<void> | undefined;
  #again = false;
  #logFillAfter = 0;
  #running: Promise<void> | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #onMessage: (evt: CustomEvent<{ propagationSource: PeerId; msg: { topic: string; data: Uint8Array } }>) => void;

  constructor(o: ReplicaOptions) {
    this.#o = o;
    this.#writerId = o.writer;
    const key = peerIdFromString(o.writer).publicKey;
    if (!key || key.type !== 'Ed25519') throw new TypeError(`--follow needs an Ed25519 peer id (the writer's key), got ${o.writer}`);
    this.#writerKey = key.raw;
    this.#log = o.log ?? (() => {});
    this.#timeoutMs = o.requestTimeoutMs ?? 30_000;
    this.#writer = new WriterSync({
      libp2p: o.libp2p,
      writer: o.writer,
      store: o.store,
      writerKey: this.#writerKey,
      db: o.db,
      bootstrap: o.bootstrap,
      timeoutMs: this.#timeoutMs,
      concurrency: o.concurrency ?? 8,
      retargetAfter: o.retargetAfter ?? 64,
      signal: this.#life.signal,
      log: this.#log,
    });
    this.#onMessage = (evt) => {
      if (evt.detail.msg.topic !== o.topic) return;
      // An event listener that throws ends the process (Node reports it as an uncaught
      // exception): gossip is remote input, so no failure on it may escape.
      try {
        this.#onGossip(evt.detail.msg.data, evt.detail.propagationSource);
      } catch (err) {
        this.#log(`gossip message from ${evt.detail.propagationSource.toString()} dropped: ${(err as Error)?.name}: ${(err as Error)?.message}`);
      }
    };
  }

  /** The served database once synced (before that, undefined: the caller serves its own). */
  get db(): MerkleDatabase | undefined {
    return this.#db;
  }

  /** The newest verified writer announcement's wire bytes (what /heads answers). */
  get announcementBytes(): Uint8Array | undefined {
    return this.#writer.newestBytes;
  }

  get announcement(): VerifiedAnnouncement | undefined {
    return this.#writer.newest;
  }

  get phase(): ReplicaPhase {
    if (this.#stopped) return 'stopped';
    if (this.#starting) return 'starting';
    const mode = this.#policy.mode;
    return mode === 'live' ? 'following' : mode;
  }

  status(): ReplicaStatus {
    const p = this.#writer.progress;
    return {
      writer: this.#writerId,
      phase: this.phase,
      seq: this.#writer.newest?.seq ?? null,
      appliedLogSize: this.#appliedLogSize,
      pending: this.#dag.pendingCount,
      ...this.#stats,
      catchUps: this.#policy.state.catchUps,
      sync: p
        ? {
            phase: p.phase,
            fractionDone: p.fractionDone,
            keyValuesReceived: p.keyValuesReceived,
            bytesReceived: p.bytesReceived,
            requests: p.requests,
            peersUsed: p.peersUsed,
            peersBanned: p.peersBanned,
            proofsRejected: p.proofsRejected,
          }
        : null,
      banned: [...this.#writer.banned],
    };
  }

  /**
   * Loads what the store holds, subscribes to gossip and starts syncing or following in the
   * background (the node serves meanwhile).
   */
  async start(): Promise<void> {
    const { store } = this.#o;
    await this.#writer.loadStored();
    const followBytes = await store.writer.get(FOLLOW_KEY);
    const follow = followBytes ? decodeFollow(followBytes) : undefined;
    const progress = await loadProgress(store.state);
    const synced = follow !== undefined && equalBytes(follow.root, store.db.root) && progress.target === undefined && progress.segments.length === 0;
    if (synced) {
      this.#db = store.db;
      this.#dag = new DeltaDag({ applied: follow });
      this.#appliedLogSize = follow.logSize;
    }
    const pubsub = this.#o.libp2p.services.pubsub;
    pubsub.addEventListener('gossipsub:message', this.#onMessage as never);
    this.#running = this.#run(synced).catch((err: unknown) => {
      if (!this.#life.signal.aborted) this.#log(`replica stopped on an error: ${(err as Error)?.stack ?? String(err)}`);
    });
  }

  async stop(): Promise<void> {
    if (this.#life.signal.aborted) return;
    this.#life.abort(new DOMException('the node is stopping', 'AbortError'));
    this.#writer.close();
    if (this.#timer) clearInterval(this.#timer);
    this.#o.libp2p.services.pubsub.removeEventListener('gossipsub:message', this.#onMessage as never);
    await this.#running;
    // let a follow step in flight finish its commit
    await this.#working;
    this.#stopped = true;
  }

  // ---- gossip ---------------------------------------------------------------------------------

  #onGossip(data: Uint8Array, from: PeerId): void {
    if (data.length === 0 || this.#life.signal.aborted) return;
    const body = data.constructor === Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (isAnnouncementTag(body[0])) {
      if (this.#writer.accept(body)) {
        this.#lastSender = from;
        this.#kick();
      }
      return;
    }
    if (body[0] !== DELTA_TAG) return;
    let d: VerifiedDelta;
    try {
      d = verifyDelta(decodeDelta(body), this.#writerKey);
    } catch {
      return;
    }
    this.#lastSender = from;
    const r = this.#dag.add(d, Date.now());
    if (r.status === 'ready' || r.status === 'pending') this.#kick();
  }

  // ---- sync ------------------------------------------------------------------------------------

  async #run(synced: boolean): Promise<void> {
    const signal = this.#life.signal;
    await this.#writer.fetchNewestHeads();
    for (let attempt = 0; !this.#writer.newest; attempt++) {
      await delay(Math.min(10_000, 500 * 2 ** attempt), signal);
      await this.#writer.fetchNewestHeads();
    }
    this.#starting = false;
    if (!synced) {
      // by the newest checkpoint, kept servable from the first sync on (checkpoint-history.ts)
      const recorder = new ChangeRecorder(this.#o.store.state);
      const reached = await this.#writer.syncToNewest('sync', { recorder, viaCheckpoint: true });
      if (!reached) return;
      const passed = recorder.recorded();
      if (!passed) this.#log('the sync went by no checkpoint (none named, or too many keys changed past it): checkpoints are served from the next one named');
      await this.#finish(reached, passed);
    }
    if (signal.aborted) return;
    this.#todo.push(...this.#policy.step({ type: 'at-root', reason: synced ? 'restored' : 'synced', now: Date.now() }));
    this.#log(`following ${this.#writerId} at root ${toHex(this.#db!.root)}, log ${this.#appliedLogSize}`);
    this.#timer = setInterval(() => this.#kick(), this.#o.tickMs ?? 1000);
    this.#timer.unref?.();
    this.#kick();
  }

  /**
   * The store holds the state at `ann`: drop the sync progress in one batch with the `follow`
   * record and the history, and serve a database opened afresh over it. The history:
   * - after a first sync by a checkpoint (`passed` from the checkpoint), the checkpoint and the
   *   head, and the checkpoint is kept servable;
   * - after a catch-up from the served database `base` (`passed` from its root), `base`'s
   *   history with the head as one more revision, so the checkpoints it kept stay servable;
   * - else (nothing recorded, or too much) none: the window starts afresh at the head.
   * The database checks the recorded changes by rebuilding the older root from the head; if
   * they do not rebuild it, the history goes (as without a record).
   */
  async #finish(ann: VerifiedAnnouncement, passed?: RecordedChanges, base?: MerkleDatabase): Promise<void> {
    const state = this.#o.store.state;
    const progress = await loadProgress(state);
    const ops: BatchOp[] = clearProgressOps(progress.segments);
    const clearHistory = async (): Promise<BatchOp[]> => {
      const del: BatchOp[] = [];
      for await (const [k] of state.iterate({ gte: Uint8Array.of(HISTORY_PREFIX), lt: Uint8Array.of(HISTORY_PREFIX + 1) })) del.push({ type: 'del', key: k });
      return del;
    };
    const moved = passed !== undefined && !equalBytes(passed.from, ann.stateRoot) ? passed : undefined;
    const extend = base !== undefined && passed !== undefined && equalBytes(passed.from, base.root);
    if (extend) {
      if (moved) ops.push(nextRevisionOp(base.revision + 1, ann.stateRoot, moved));
    } else {
      ops.push(...(await clearHistory()));
      if (moved) ops.push(...checkpointHistoryOps(ann.stateRoot, moved));
    }
    const cover: FollowRecord = { root: ann.stateRoot, heads: ann.heads, logSize: ann.logSize };
    ops.push(...underPrefix(WRITER_PREFIX, [{ type: 'put', key: FOLLOW_KEY, value: encodeFollow(cover) }]));
    await state.write(ops);
    // leaves in full, as openNodeStore writes them (TrieOptions.elideLeaves)
    const open = () => MerkleDatabase.open(state, { elideLeaves: false, ...this.#o.database, historySize: this.#o.historySize ?? 300 });
    this.#db = await open();
    if (moved) {
      try {
        // the view at the older root rebuilds it from the recorded changes, or throws
        await this.#db.reading(() => this.#db!.viewAt(moved.from));
        if (extend) this.#log(`history kept across the catch-up (${moved.changes.length} keys changed), checkpoints ${this.#db.checkpoints().map(toHex).join(', ') || 'none'}`);
        else if (await this.#db.retainCheckpoint(moved.from)) this.#log(`kept checkpoint ${toHex(moved.from)} (${moved.changes.length} keys changed since)`);
      } catch (err) {
        this.#log(`history from ${toHex(moved.from)} not kept: ${(err as Error).message}`);
        await state.write(await clearHistory());
        this.#db = await open();
      }
    }
    await this.#retainCheckpoint();
    if (!equalBytes(this.#db.root, ann.stateRoot)) throw new Error(`internal: synced to ${toHex(this.#db.root)}, expected ${toHex(ann.stateRoot)}`);
    this.#dag.resetApplied(cover);
    this.#appliedLogSize = ann.logSize;
  }

  /**
   * Change-proof catch-up to the newest announcement, serving held off meanwhile; then the
   * follow loop goes on from where the state stands (a catch-up that gave up leaves it where it
   * was, and the next round asks again).
   */
  async #catchUp(why: string): Promise<void> {
    this.#log(`catch-up (${why}) from root ${toHex(this.#db!.root)} to seq ${this.#writer.newest!.seq}`);
    try {
      await this.#o.lock.write(async () => {
        // the store holds the served database's root: the catch-up's writes extend its history
        const base = this.#db!;
        const recorder = new ChangeRecorder(this.#o.store.state);
        recorder.start(base.root);
        const reached = await this.#writer.syncToNewest('catch-up', { recorder });
        if (reached) await this.#finish(reached, recorder.recorded(), base);
      });
    } finally {
      if (!this.#life.signal.aborted) this.#todo.push(...this.#policy.step({ type: 'at-root', reason: 'synced', now: Date.now() }));
    }
    // pending deltas never wait forever: what a catch-up did not cover and is too old goes
    const dropped = this.#dag.drop(this.#dag.expired(Date.now(), this.#o.pendingTimeoutMs ?? 10_000).map((d) => d.id));
    if (dropped.length) this.#log(`dropped ${dropped.length} expired pending deltas`);
  }

  // ---- follow ----------------------------------------------------------------------------------

  #kick(): void {
    if (this.#policy.mode !== 'live' || this.#life.signal.aborted) return;
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#busy = true;
    this.#working = (async () => {
      try {
        do {
          this.#again = false;
          if (this.#life.signal.aborted || this.#policy.mode !== 'live') break;
          await this.#step();
        } while (this.#again);
      } catch (err) {
        if (!this.#life.signal.aborted) this.#log(`follow step failed: ${(err as Error)?.stack ?? String(err)}`);
      } finally {
        this.#busy = false;
      }
    })();
  }

  /** One round of the follow loop; sets `#again` when there is more to do at once. */
  async #step(): Promise<void> {
    await this.#retainCheckpoint();
    const todo = this.#todo.splice(0);
    if (todo.length > 0) {
      await this.#act(todo);
      this.#again = true;
      return;
    }
    const dag = this.#dag;
    const report = await dag.applyReady((d) => this.#apply(d));
    await this.#retainCheckpoint();
    if (report.kind === 'needs-catch-up') {
      const why = report.reason === 'root-mismatch' ? `delta ${toHex(report.delta)} did not reproduce its root` : report.reason;
      await this.#act(this.#policy.step({ type: 'root-mismatch' }), why);
      this.#again = true;
      return;
    }
    const timeout = this.#o.pendingTimeoutMs ?? 10_000;
    if (dag.expired(Date.now(), timeout).length > 0) {
      await this.#act(this.#policy.step({ type: 'expired' }), `deltas pending over ${timeout} ms`);
      this.#again = true;
      return;
    }
    if (this.#wanted().length > 0) {
      // no peer to ask: the next tick looks again
      if (!(await this.#deltaPeer())) return;
      await this.#act(this.#policy.step({ type: 'missing', from: this.#lastSender?.toString(), now: Date.now() }));
      this.#again = true;
      return;
    }
    if (this.#o.opLog.size < this.#appliedLogSize && Date.now() >= this.#logFillAfter) await this.#fillLog();
  }

  /**
   * Keeps the newest announced checkpoint servable beyond the history window, once the served
   * state has passed it (its root is in the window): as the writer does, so a fresh client can
   * range-sync to it from any replica.
   */
  async #retainCheckpoint(): Promise<void> {
    const c = this.#writer.newest?.checkpoint;
    const db = this.#db;
    if (c === undefined || db === undefined || db.isCheckpoint(c.root) || !db.hasRoot(c.root)) return;
    await db.retainCheckpoint(c.root);
  }

  /** Carries out the policy's actions in order; `why` says what led to a catch-up, for the log. */
  async #act(actions: FollowAction[], why?: string): Promise<void> {
    for (const a of actions) {
      if (this.#life.signal.aborted) return;
      switch (a.type) {
        case 'mode':
          break; // the phase is the policy's mode
        case 'apply':
        case 'timer':
          // the loop applies in its next round; the tick comes back for timers
          this.#again = true;
          break;
        case 'fill':
          await this.#fill(a.hint);
          break;
        case 'catch-up':
          await this.#catchUp(why ?? a.reason);
          this.#again = true;
          break;
      }
    }
  }

  /** Missing parents of held deltas, and the newest announcement's heads not held, by hex id. */
  #wanted(): Uint8Array[] {
    const want = new Map<string, Uint8Array>();
    for (const id of this.#dag.missingParents()) want.set(toHex(id), id);
    for (const h of this.#writer.newest?.heads ?? []) if (!this.#dag.knows(h)) want.set(toHex(h), h);
    return [...want.values()];
  }

  /** Gap fills, for as long as the policy asks for another; then its other actions. */
  async #fill(hint: string | undefined): Promise<void> {
    for (let next: { hint: string | undefined } | undefined = { hint }; next; ) {
      const outcome = await this.#fillOnce(next.hint);
      next = undefined;
      const rest: FollowAction[] = [];
      for (const a of this.#policy.step({ type: 'fill-ended', ...outcome })) {
        if (a.type === 'fill') next = { hint: a.hint };
        else rest.push(a);
      }
      await this.#act(rest, outcome.outcome === 'failed' ? `gap fill: ${outcome.reason}` : undefined);
    }
  }

  /** One gap fill over /delta from `hint` (or another serving peer); what it fetched is held either way. */
  async #fillOnce(hint: string | undefined): Promise<FillOutcome> {
    const dag = this.#dag;
    const want = this.#wanted();
    if (want.length === 0) return { outcome: 'nothing-missing' };
    const peer = await this.#deltaPeer(hint);
    if (!peer) return { outcome: 'waiting' };
    this.#stats.gapFills++;
    const r = await fillGaps(want, {
      source: deltaSource(this.#o.libp2p, peer, this.#timeoutMs),
      writerPublicKey: this.#writerKey,
      knows: (id) => dag.knows(id),
      maxTotal: this.#o.maxGap ?? 10_000,
      requestTimeoutMs: this.#timeoutMs,
      signal: this.#life.signal,
    });
    const now = Date.now();
    for (const d of r.deltas) dag.add(d, now);
    if (r.offences.length) this.#log(`gap fill: ${r.offences.length} offences by ${peer.toString()}`);
    if (r.kind === 'filled') return { outcome: 'filled' };
    // no chain is remembered as given up on here (`fillGaps` gets no `abandoned`)
    if (r.reason === 'abandoned-chain') return { outcome: 'abandoned' };
    return { outcome: 'failed', reason: r.reason, now };
  }

  /** The peer to ask for deltas: `hint` (the last gossip sender), else any serving peer. */
  async #deltaPeer(hint = this.#lastSender?.toString()): Promise<PeerId | undefined> {
    const peers = await this.#writer.usablePeers();
    return peers.find((p) => p.toString() === hint) ?? peers[0];
  }

  async #fillLog(): Promise<void> {
    const ann = this.#writer.newest;
    if (!ann || ann.logSize < this.#appliedLogSize) return;
    const peers = await this.#writer.usablePeers();
    // the writer has the whole log; other replicas may not
    peers.sort((a, b) => Number(b.toString() === this.#writerId) - Number(a.toString() === this.#writerId));
    for (const peer of peers) {
      try {
        await fillLog(
          { libp2p: this.#o.libp2p, peer, store: this.#o.store, log: this.#o.opLog, writerPublicKey: this.#writerKey, timeoutMs: this.#timeoutMs, signal: this.#life.signal },
          ann,
          this.#appliedLogSize,
        );
        this.#log(`log filled to ${this.#o.opLog.size} from ${peer.toString()}`);
        return;
      } catch (err) {
        if (this.#life.signal.aborted) return;
        this.#log(`log fill from ${peer.toString()} failed: ${(err as Error).name}: ${(err as Error).message}`);
      }
    }
    this.#logFillAfter = Date.now() + 5_000;
  }

  /** Commits one delta through the database, with the follow record (and its log entry). */
  async #apply(d: VerifiedDelta): Promise<Uint8Array> {
    const db = this.#db!;
    const log = this.#o.opLog;
    const bytes = encodeDelta(d);
    const heads = [...this.#dag.heads().filter((h) => !d.parents.some((p) => equalBytes(p, h))), d.id];
    const logSize = Math.max(this.#appliedLogSize, d.logIndex + 1);
    let staged: ReturnType<OperationLog['stage']> | undefined;
    const root = await db.commit(d.actions, (root) => {
      const ops: BatchOp[] = underPrefix(WRITER_PREFIX, [{ type: 'put', key: FOLLOW_KEY, value: encodeFollow({ root, heads, logSize }) }]);
      if (d.logIndex === log.size) {
        staged = log.stage(d.id, bytes);
        ops.push(...underPrefix(LOG_PREFIX, staged.logOps), ...underPrefix(DELTA_PREFIX, staged.deltaOps));
      }
      return ops;
    });
    if (staged) log.applyStaged(staged);
    this.#appliedLogSize = logSize;
    this.#stats.deltasApplied++;
    this.#log(`applied log ${d.logIndex} root ${toHex(root)}`);
    return root;
  }
}
