/** Guarding a class's public methods: whatever escapes them is a PlexusError. */
import { guarded } from '../errors.js';

/**
 * Replaces each named method of `cls` with one that runs it under `guarded`
 * (src/errors.ts): a raw fs, SQLite or native error becomes its coded PlexusError, a
 * programming bug E_INTERNAL. Applied once, where the class is defined, so a method
 * added to the public surface is guarded by adding its name.
 */
export function guardMethods<T extends object>(cls: { prototype: T }, names: readonly (keyof T & string)[]): void {
  const proto = cls.prototype as Record<string, unknown>;
  for (const name of names) {
    const method = proto[name] as (...args: unknown[]) => unknown;
    proto[name] = function (this: unknown, ...args: unknown[]): unknown {
      return guarded(() => method.apply(this, args));
    };
  }
}
