/**
 * Lazy actions: the command tree is declared with commander alone, and each action loads
 * its run module (and through it the library, SQLite and the native addon) only when that
 * command runs. `plexus --version` and `--help` load nothing else.
 */
import type { Command } from './commander.js';

/**
 * A commander action that imports a run module and calls `pick(module)` with the
 * command's positional arguments and its options merged with the global ones.
 */
// biome-ignore lint/suspicious/noExplicitAny: run functions take their own argument types; commander hands over unknowns
export function lazy<M>(load: () => Promise<M>, pick: (m: M) => (...args: any[]) => unknown): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const run = pick(await load());
    await run(...args.slice(0, -2), cmd.optsWithGlobals());
  };
}
