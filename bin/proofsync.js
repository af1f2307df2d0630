#!/usr/bin/env node
// Runs the TypeScript sources directly: Node 24 strips types (the `node` devDependency supplies it).
await import('../src/cli/bin.ts');
