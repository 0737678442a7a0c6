/** Errors thrown by the Plexus library: every one carries a stable `code`. */

/** An operational failure with a stable code (E_RANGE, E_NOENT, E_SIZE, ...). */
export class PlexusError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PlexusError';
    this.code = code;
  }
}

const CODED = /^(E_[A-Z0-9_]+): ([\s\S]*)$/;

/**
 * The native core sends its code at the front of the message (see native/src/error.rs);
 * this lifts it into `code` and keeps the original as `cause`.
 */
export function fromNative(e: unknown): unknown {
  if (e instanceof PlexusError || !(e instanceof Error)) return e;
  const m = CODED.exec(e.message);
  if (m) return new PlexusError(m[1]!, m[2]!, { cause: e });
  // Uncoded errors of the binding itself: a panic caught at the boundary
  // (`#[napi(catch_unwind)]`, status GenericFailure) is a bug, E_INTERNAL; an argument
  // napi-rs could not convert (InvalidArg, NumberExpected, ...) is bad input.
  const status = (e as { code?: unknown }).code;
  if (status === 'GenericFailure') return new PlexusError('E_INTERNAL', `internal error in the native core (a bug, please report it): ${e.message}`, { cause: e });
  if (status === 'Cancelled') return new PlexusError('E_CANCELLED', 'cancelled', { cause: e });
  if (typeof status === 'string' && NAPI_STATUS.has(status)) return new PlexusError('E_INVALID', e.message, { cause: e });
  return e;
}

/** napi-rs statuses of arguments it could not convert. */
const NAPI_STATUS = new Set(['InvalidArg', 'ObjectExpected', 'StringExpected', 'FunctionExpected', 'NumberExpected', 'BooleanExpected', 'ArrayExpected', 'BigintExpected']);

/** Runs a synchronous native call, translating its errors. */
export function callNative<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw fromNative(e);
  }
}

/** Awaits a native Promise, translating its rejection. */
export async function awaitNative<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw fromNative(e);
  }
}

const ERRNO_CODES: Record<string, string> = {
  ENOENT: 'E_NOENT',
  ENOTDIR: 'E_NOENT',
  EISDIR: 'E_INVALID',
  EEXIST: 'E_EXISTS',
  EACCES: 'E_ACCESS',
  EPERM: 'E_ACCESS',
  EROFS: 'E_READONLY',
  ENOSPC: 'E_NOSPC',
  EDQUOT: 'E_NOSPC',
};

/** Any failure as a PlexusError: itself if it is one, else E_IO with it as the cause. */
export function asPlexusError(e: unknown): PlexusError {
  return e instanceof PlexusError ? e : new PlexusError('E_IO', (e as Error).message, { cause: e });
}

/** Turns a Node.js system error (errno code) into a PlexusError; others pass through. */
export function fromSystem(e: unknown): unknown {
  if (e instanceof PlexusError || !(e instanceof Error)) return e;
  const errno = (e as NodeJS.ErrnoException).code;
  if (typeof errno !== 'string' || !/^E[A-Z]+$/.test(errno)) return e;
  return new PlexusError(ERRNO_CODES[errno] ?? 'E_IO', e.message, { cause: e });
}
