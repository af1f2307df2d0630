/**
 * What the demo server tells the page (GET /demo-config.json, GET /demo/nodes, POST
 * /demo/misbehave, POST /demo/write): types only, shared by demo/server and the page.
 */

export type Transport = 'websockets' | 'webrtc-direct';

export interface DemoNodeInfo {
  name: 'writer' | 'replica';
  peerId: string;
  /** Whether the page should dial it (a replica that does not follow the writer serves nothing). */
  serving: boolean;
}

export interface DemoConfig {
  /** The database id (announcements' `db`). */
  db: string;
  /** The writer's peer id: the one key the page trusts. */
  writer: string;
  /** Bootstrap multiaddrs per transport (writer and replica). */
  bootstrap: Record<Transport, string[]>;
  nodes: DemoNodeInfo[];
  /** Keys of the generated database, to try the lookup with. */
  sampleKeys: string[];
  keys: number;
  writesPerSecond: number;
  /** Whether the replica can be told to send tampered proofs. */
  misbehave: boolean;
  /** Static proof mirrors, as paths on the page's server (the writer's `--snapshot-dir`, docs/static-proofs.md). */
  snapshots?: string[];
  /** `dev` (Vite) or `build` (the production bundle). */
  mode: 'dev' | 'build';
}

/** GET /demo/nodes: what each node has served (its metrics) and where it stands. */
export interface DemoNodeStats {
  name: 'writer' | 'replica';
  peerId: string;
  seq: number | null;
  root: string | null;
  /** Range and change proofs answered (the sync's requests). */
  proofsServed: number;
  /** Single-key proofs and heads answered. */
  otherServed: number;
  bytesServed: number;
  /** Mean time the node took to build an answer (ms, server side). */
  meanServeMs: number | null;
  misbehaving: boolean;
}

/** POST /demo/write: one put committed by the writer. */
export interface DemoWriteResult {
  key: string;
  value: string;
  seq: number;
  root: string;
  /** The demo server's wall clock when the writer answered (ms since the epoch). */
  committedAt: number;
}
