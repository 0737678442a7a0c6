/** What every command's run function needs: the home, option parsing helpers. */

import { PlexusError } from '../errors.js';
import { Home } from '../home/home.js';
import { parseSize } from '../util/size.js';
import { VolumeStore } from '../volumes/store.js';

/** Global options every command inherits (its run function gets them with its own). */
export interface GlobalOptions {
  home?: string;
  host?: string;
}

/**
 * Opens the home named by --home / PLEXUS_HOME / ./.plexus. A missing home is E_NOENT
 * naming it (a mistyped --home must not look like an empty home); only the commands that
 * create something (init, volume create, library create, resources add, demo, bench)
 * pass `create` and make it on first use.
 */
export function homeOf(o: GlobalOptions, opts: { create?: boolean } = {}): Home {
  return Home.open(o.home, { create: opts.create ?? false });
}

/** The volume store of the command's home. */
export function volumesOf(o: GlobalOptions, opts: { create?: boolean } = {}): VolumeStore {
  return new VolumeStore(homeOf(o, opts));
}

/** Parses an optional size option. */
export function sizeOpt(value: string | undefined, what: string): number | undefined {
  return value === undefined ? undefined : parseSize(value, what);
}

/** Parses a whole number option (threads, seeds, counts). */
export function intOpt(value: string | undefined, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new PlexusError('E_INVALID', `${what} must be a whole number from ${min} to ${max}, got '${value}'`);
  }
  return n;
}

/** Parses a byte value: 0-255 in decimal or 0x hex. */
export function byteOpt(value: string): number {
  const n = /^0x[0-9a-f]{1,2}$/i.test(value) ? parseInt(value, 16) : /^\d{1,3}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 0 && n <= 255)) throw new PlexusError('E_INVALID', `pattern must be a byte 0-255 or 0x00-0xff, got '${value}'`);
  return n;
}
