// The light client's worker: the SDK's worker entry, bundled as its own file (build.mjs).
import 'proofsync/client/worker';
