/** Registers the command groups beyond the core's (each group lives in its own module). */
import './node-commands.ts';
import './snapshot-command.ts';
