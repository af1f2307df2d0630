/** Helpers for the worker's tests (not in the build: tsconfig.build.json leaves out testing.ts files). */

/** The worker configuration the engine-host tests start from (no dialing, small answers, no polling). */
export function testHostConfig(db: string, writer: string): {
  db: string;
  writer: string;
  dial: string[];
  bridged: boolean;
  ranges: undefined;
  storageName: string;
  allowInsecureLoopback: boolean;
  sync: { keyLimit: number };
  autoStart: boolean;
  minFreeBytes: number;
  headsPollMs: number;
} {
  return {
    db,
    writer,
    dial: [],
    bridged: false,
    ranges: undefined,
    storageName: 'x',
    allowInsecureLoopback: false,
    sync: { keyLimit: 64 },
    autoStart: true,
    minFreeBytes: 0,
    headsPollMs: 0,
  };
}
