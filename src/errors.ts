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

/**
 * Whether `e` is a programming bug rather than an operational failure: a TypeError,
 * RangeError, ReferenceError, SyntaxError or EvalError, a failed assertion, or a throw of
 * something that is not an Error. Bugs are never relabelled E_IO: they become E_INTERNAL.
 */
export function isBug(e: unknown): boolean {
  if (e instanceof PlexusError) return e.code === 'E_INTERNAL';
  if (!(e instanceof Error)) return true;
  if (e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError || e instanceof SyntaxError || e instanceof EvalError) return true;
  return e.name === 'AssertionError' || (e as NodeJS.ErrnoException).code === 'ERR_ASSERTION';
}

/** The SQLite result codes of better-sqlite3's SqliteError, by family, as Plexus codes. */
function sqliteCode(code: string): string {
  if (code.startsWith('SQLITE_CONSTRAINT')) {
    return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' ? 'E_EXISTS' : 'E_STATE';
  }
  const family = /^SQLITE_[A-Z]+/.exec(code)?.[0] ?? code;
  switch (family) {
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return 'E_BUSY';
    case 'SQLITE_CORRUPT':
    case 'SQLITE_NOTADB':
    case 'SQLITE_FORMAT':
      return 'E_CORRUPT';
    case 'SQLITE_FULL':
      return 'E_NOSPC';
    case 'SQLITE_READONLY':
    case 'SQLITE_PERM':
    case 'SQLITE_AUTH':
      return 'E_ACCESS';
    case 'SQLITE_INTERRUPT':
      return 'E_CANCELLED';
    case 'SQLITE_CANTOPEN':
    case 'SQLITE_IOERR':
    case 'SQLITE_NOLFS':
    case 'SQLITE_PROTOCOL':
    case 'SQLITE_NOMEM':
      return 'E_IO';
    case 'SQLITE_TOOBIG':
    case 'SQLITE_RANGE':
    case 'SQLITE_MISMATCH':
      return 'E_INVALID';
    default:
      // SQLITE_ERROR (bad SQL), SQLITE_MISUSE, SQLITE_SCHEMA, ...: the program's fault.
      return 'E_INTERNAL';
  }
}

/** Whether `e` is better-sqlite3's SqliteError. */
export function isSqliteError(e: unknown): e is Error & { code: string } {
  return e instanceof Error && e.name === 'SqliteError' && typeof (e as { code?: unknown }).code === 'string';
}

/**
 * Turns a SqliteError into a PlexusError naming `what` (the catalog file): busy or
 * locked → E_BUSY, corrupt or not a database → E_CORRUPT, disk full → E_NOSPC, read-only
 * or permission → E_ACCESS, a unique key → E_EXISTS, another constraint → E_STATE, I/O
 * and cannot-open → E_IO, bad SQL or misuse → E_INTERNAL. Others pass through.
 */
export function fromSqlite(e: unknown, what?: string): unknown {
  if (!isSqliteError(e)) return e;
  const code = sqliteCode(e.code);
  const where = what ? `${what}: ` : '';
  const hint = code === 'E_BUSY' ? " (another process holds the catalog's write lock)" : '';
  return new PlexusError(code, `${where}${e.message}${hint} [${e.code}]`, { cause: e });
}

/**
 * Any failure as a PlexusError: itself if it is one; a SqliteError, a system error or a
 * coded native error mapped to its code; AbortError → E_CANCELLED; a programming bug
 * (see isBug) or anything unrecognised → E_INTERNAL, keeping the original as the cause.
 */
export function asPlexusError(e: unknown): PlexusError {
  if (e instanceof PlexusError) return e;
  const mapped = fromSystem(fromSqlite(fromNative(e)));
  if (mapped instanceof PlexusError) return mapped;
  if (mapped instanceof Error && (mapped.name === 'AbortError' || (mapped as NodeJS.ErrnoException).code === 'ABORT_ERR')) {
    return new PlexusError('E_CANCELLED', mapped.message, { cause: mapped });
  }
  const message = mapped instanceof Error ? `${mapped.name}: ${mapped.message}` : `non-error thrown: ${String(mapped)}`;
  return new PlexusError('E_INTERNAL', message, { cause: mapped });
}

/**
 * Runs `fn` (sync or async) and turns whatever escapes it into a PlexusError
 * (asPlexusError): the guard of the library's entry points.
 */
export function guarded<T>(fn: () => T): T {
  let r: T;
  try {
    r = fn();
  } catch (e) {
    throw asPlexusError(e);
  }
  if (r instanceof Promise) return r.catch((e: unknown) => Promise.reject(asPlexusError(e))) as T;
  return r;
}

/**
 * Turns a Node.js system error (errno code) into a PlexusError; others pass through.
 * `file` (when given and not already in the message) is named in the message.
 */
export function fromSystem(e: unknown, file?: string): unknown {
  if (e instanceof PlexusError || !(e instanceof Error)) return e;
  const errno = (e as NodeJS.ErrnoException).code;
  if (typeof errno !== 'string' || !/^E[A-Z]+$/.test(errno)) return e;
  const message = file && !e.message.includes(file) ? `${file}: ${e.message}` : e.message;
  return new PlexusError(ERRNO_CODES[errno] ?? 'E_IO', message, { cause: e });
}
