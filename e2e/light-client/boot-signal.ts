/**
 * The test page's `?boot=` signal, shared by the page and the drivers that wait for it (a module
 * of its own: the drivers run in Node and must not load the page's code).
 */

/** Logged with `console.debug` once `window.__boot` holds the outcome of the page's own start. */
export const BOOTED_MESSAGE = 'proofsync-e2e:booted';
