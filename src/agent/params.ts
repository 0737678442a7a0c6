/** Checks the parameters of a control request: a client is trusted with the home, not with its types. */
import { PlexusError } from '../errors.js';

/** A request's parameters. */
export type Params = Record<string, unknown>;

function bad(method: string, key: string, want: string): PlexusError {
  return new PlexusError('E_INVALID', `control request ${method}: parameter ${key} must be ${want}`);
}

/** Reads typed parameters of one request. */
export class ParamReader {
  constructor(
    private readonly method: string,
    private readonly p: Params,
  ) {}

  /** A required string. */
  str(key: string): string {
    const v = this.p[key];
    if (typeof v !== 'string') throw bad(this.method, key, 'a string');
    return v;
  }

  /** An optional string. */
  optStr(key: string): string | undefined {
    return this.p[key] === undefined || this.p[key] === null ? undefined : this.str(key);
  }

  /** An optional whole number from 0 to 2^53-1. */
  optNum(key: string): number | undefined {
    const v = this.p[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(this.method, key, 'a whole number');
    return v;
  }

  /** A required whole number. */
  num(key: string): number {
    const v = this.optNum(key);
    if (v === undefined) throw bad(this.method, key, 'a whole number');
    return v;
  }

  /** An optional flag (absent: false). */
  flag(key: string): boolean {
    const v = this.p[key];
    if (v === undefined || v === null) return false;
    if (typeof v !== 'boolean') throw bad(this.method, key, 'true or false');
    return v;
  }

  /** An optional flag, undefined when absent (for flags whose default is true). */
  optFlag(key: string): boolean | undefined {
    return this.p[key] === undefined || this.p[key] === null ? undefined : this.flag(key);
  }

  /** An optional list of strings. */
  optStrs(key: string): string[] | undefined {
    const v = this.p[key];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad(this.method, key, 'a list of strings');
    return v as string[];
  }

  /** A required list of objects, each read by its own reader. */
  objects(key: string): ParamReader[] {
    const v = this.p[key];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'object' && x !== null && !Array.isArray(x))) throw bad(this.method, key, 'a list of objects');
    return v.map((x) => new ParamReader(`${this.method} ${key}[]`, x as Params));
  }

  /** Required bytes. */
  bytes(key: string): Buffer {
    const v = this.p[key];
    if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    throw bad(this.method, key, 'bytes');
  }
}
