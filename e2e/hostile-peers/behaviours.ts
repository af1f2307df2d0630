/** The malicious node's behaviours (malicious-node.ts), one per run. */
export const BEHAVIOURS = ['silent', 'endless', 'huge-prefix', 'many-nodes', 'oversized', 'wrong-type'] as const;
export type Behaviour = (typeof BEHAVIOURS)[number];

/** The decode errors each malformed or oversized answer must be rejected with (the `peer` event's reason). */
export const EXPECTED_REASONS: Record<Exclude<Behaviour, 'silent'>, readonly string[]> = {
  // the honest answer, then 0xff bytes up to the declared length: the decoder trips on the first of them
  endless: ['InvalidVarint', 'InvalidWireType', 'InvalidFieldNumber', 'TrailingBytes', 'TruncatedInput'],
  'huge-prefix': ['MessageTooLarge'],
  'many-nodes': ['TooManyItems'],
  oversized: ['MessageTooLarge'],
  'wrong-type': ['InvalidWireType', 'InvalidFieldNumber'],
};
