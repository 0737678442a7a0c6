/** The `plexus` entry point: run the program, turn any failure into one line and an exit code. */
import { type Command, CommanderError } from './commander.js';
import { fromSystem, PlexusError } from '../errors.js';
import { buildProgram } from './program.js';

/** Exit status for bad usage (unknown option, missing argument). */
const EXIT_USAGE = 2;

/** Runs the CLI with `argv` (as in process.argv) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram(argv);
  // Subcommands do not inherit these settings when added with addCommand, so walk the tree.
  const configure = (c: Command): void => {
    c.exitOverride();
    c.configureOutput({ writeErr: (s) => process.stderr.write(s) });
    c.commands.forEach(configure);
  };
  configure(program);
  try {
    await program.parseAsync(argv);
    // A command may set a non-zero status without failing (pair wait's timeout).
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (caught) {
    const e = fromSystem(caught);
    if (e instanceof CommanderError) {
      // help and version also arrive here, with exit code 0
      return e.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (e instanceof PlexusError) {
      process.stderr.write(`plexus: ${e.message} (${e.code})\n`);
      return 1;
    }
    const err = e as NodeJS.ErrnoException;
    process.stderr.write(`plexus: ${err?.message ?? String(e)}${err?.code ? ` (${err.code})` : ''}\n`);
    if (process.env.PLEXUS_DEBUG) process.stderr.write(`${err?.stack}\n`);
    return 1;
  }
}
