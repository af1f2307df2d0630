// The size budgets (size-check.ts): the browser bundles stay within 5% of their recorded gzip sizes.
import { describe, expect, it } from 'vitest';
import { ENTRIES, measure, overBudget, readBudgets, type EntryName } from './size-check.ts';

describe('size budgets', () => {
  it('flags growth over 5% and only that', () => {
    const budgets = { main: 1000, worker: 2000, network: 4000, bridge: 3000 };
    expect(overBudget({ main: 1050, worker: 2000, network: 4000, bridge: 2500 }, budgets)).toEqual([]);
    const over = overBudget({ main: 1051, worker: 2101, network: 4000, bridge: 3000 }, budgets);
    expect(over.map((o) => o.split(':')[0])).toEqual(['main', 'worker']);
  });

  it('keeps the main-thread entry, the worker and the bridge chunk within budget', async () => {
    const budgets = await readBudgets();
    const sizes = {} as Record<EntryName, number>;
    for (const name of Object.keys(ENTRIES) as EntryName[]) sizes[name] = (await measure(name)).gzip;
    expect(overBudget(sizes, budgets), `measured ${JSON.stringify(sizes)}; a deliberate growth: npm run size -- --update`).toEqual([]);
    // the bridge is a lazy chunk: the entry must not contain libp2p
    expect(sizes.main).toBeLessThan(sizes.bridge / 4);
  });
});
