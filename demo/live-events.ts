/**
 * Live-update events (issue 5) as the worker emits them (src/client/live/follower.ts): applied
 * deltas, the pending-delta store, gap fills and the follower's mode. The SDK's public event map
 * does not list them yet, so the page subscribes by name with these local shapes (the fields it
 * reads only); when `LightClientEventMap` gains them, these become imports.
 */
import type { LightClient } from './sdk.ts';

export interface DeltaUpdateEvent {
  deltaId: Uint8Array;
  root: Uint8Array;
  seq: number | undefined;
  logIndex: number;
  keys: Uint8Array[];
  /** The writer's commit time (its HLC wall clock, ms since the epoch). */
  hlcWallMs: number;
  appliedAtMs: number;
}

export interface PendingEvent {
  count: number;
  bytes: number;
}

export interface GapFillEvent {
  phase: 'started' | 'finished' | 'failed';
  peer: string | undefined;
  missing: number;
  fetched: number;
  rounds: number;
  reason?: string;
}

export interface LiveModeEvent {
  mode: 'syncing' | 'live' | 'catching-up';
  reason?: string;
  applied: number;
  catchUps: number;
}

interface LiveEventMap {
  update: DeltaUpdateEvent;
  pending: PendingEvent;
  gapFill: GapFillEvent;
  live: LiveModeEvent;
}

/** `client.on(type, listener)` for an event the typed map does not list (yet). */
export function onLiveEvent<K extends keyof LiveEventMap>(client: LightClient, type: K, listener: (detail: LiveEventMap[K]) => void): () => void {
  return (client.on as unknown as (t: string, l: (d: LiveEventMap[K]) => void) => () => void)(type, listener);
}
