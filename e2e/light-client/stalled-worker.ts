/**
 * A light client worker that never becomes ready (it ignores every message): a page given it
 * (`StartOptions.stallWorker`) can answer only what it answers itself, without the worker. The
 * warm-restart test shows with it that a reloaded page reads the stored state on its own.
 */
/// <reference lib="webworker" />
declare const self: DedicatedWorkerGlobalScope;
self.onmessage = () => {};
