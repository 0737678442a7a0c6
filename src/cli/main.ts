/** The `plexus` entry point: run the program, turn any failure into one line and an exit code. */

import { asPlexusError } from '../errors.js';
import { type Command, CommanderError } from './commander.js';
import { buildProgram } from './program.js';

/** Exit status for bad usage (unknown option, missing argument). */
const EXIT_USAGE = 2;
/** Exit status for an operational failure (a PlexusError). */
const EXIT_FAILURE = 1;
/** Exit status for a bug in Plexus (E_INTERNAL): EX_SOFTWARE of sysexits.h. */
export const EXIT_INTERNAL = 70;
/** Exit status after Ctrl-C (E_CANCELLED): 128 + SIGINT, as shells report it. */
export const EXIT_CANCELLED = 130;

/**
 * Prints a failure on one line of stderr and returns the exit status: `plexus: MESSAGE
 * (CODE)` and 1; E_CANCELLED: the same line and 130; a bug (E_INTERNAL): `plexus:
 * internal error: MESSAGE (E_INTERNAL); please report it`, and 70, with the stack under
 * PLEXUS_DEBUG. docs/errors.md.
 */
export function reportFailure(caught: unknown, write: (s: string) => void = (s) => void process.stderr.write(s)): number {
  const e = asPlexusError(caught);
  const debug = Boolean(process.env.PLEXUS_DEBUG);
  if (e.code === 'E_INTERNAL') {
    write(`plexus: internal error: ${e.message} (E_INTERNAL); please report it${debug ? '' : ' (PLEXUS_DEBUG=1 prints the stack)'}\n`);
    if (debug) write(`${(e.cause instanceof Error ? e.cause : e).stack}\n`);
    return EXIT_INTERNAL;
  }
  write(`plexus: ${e.message} (${e.code})\n`);
  if (debug && e.cause instanceof Error) write(`${e.cause.stack}\n`);
  return e.code === 'E_CANCELLED' ? EXIT_CANCELLED : EXIT_FAILURE;
}

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
    if (caught instanceof CommanderError) {
      // help and version also arrive here, with exit code 0
      return caught.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    return reportFailure(caught);
  }
}
