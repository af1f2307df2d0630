/**
 * The `Error { name = 1; message = 2 }` message every response envelope may carry instead of its
 * result (docs/wire.md#proof-messages), and the check that a oneof result occurs once.
 */
import { DuplicateField, Reader, WIRE_LEN, Writer, fieldOf, once, stringFieldSize } from './pb.ts';

/** The error carried by a response: a stable error `name` and a human-readable message. */
export interface WireError {
  /** Marks the error variant of a response. */
  type: 'error';
  /** The error's stable name (`RootNotFound`, `InvalidRequest`, ...): the class the requester rebuilds. */
  name: string;
  /** What went wrong, for people. */
  message: string;
}

/** Encoded length of an `Error` message (without its field header). */
export function errorSize(e: WireError): number {
  return stringFieldSize(1, e.name) + stringFieldSize(2, e.message);
}

/** Writes `e` as the `Error` message of envelope field `field`. */
export function writeError(w: Writer, field: number, e: WireError): void {
  w.lenField(field, errorSize(e)).stringField(1, e.name).stringField(2, e.message);
}

/**
 * Reads an `Error { name = 1; message = 2 }` message (shared by every response envelope).
 *
 * @internal Takes the codec's own `Reader`; callers decode whole responses instead.
 */
export function readError(r: Reader): WireError {
  let name = '';
  let message = '';
  let seen = 0;
  while (!r.done) {
    const tag = r.tag();
    switch (fieldOf(tag)) {
      case 1:
        seen = once(seen, tag, 'Error');
        r.expect(tag, WIRE_LEN);
        name = r.string();
        break;
      case 2:
        seen = once(seen, tag, 'Error');
        r.expect(tag, WIRE_LEN);
        message = r.string();
        break;
      default:
        r.skip(tag);
    }
  }
  return { type: 'error', name, message };
}

/** Throws `DuplicateField`: a response envelope carried a second result. */
export function oneofTwice(message: string, start: number): never {
  throw new DuplicateField(`${message}: more than one field of oneof result`, { offset: start, field: 'result' });
}
