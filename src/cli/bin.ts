#!/usr/bin/env node
import { main } from './main.ts';
import './commands.ts';

process.exitCode = await main(process.argv.slice(2));
// A command is done once main returns. Native WebRTC threads (node-datachannel) may still hold
// the event loop after a WebRTC-Direct dial has closed; they must not keep a finished command
// running. The timer is unref'd, so a process with nothing left open exits at once without it.
setTimeout(() => process.exit(), 2_000).unref();
