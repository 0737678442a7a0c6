/**
 * The commander program: global options and the command tree. The tree (./tree/*) is
 * declared with commander alone; each action imports its run module (./commands/*) when
 * it runs, so start-up loads neither the library, nor SQLite, nor the native addon.
 * When the arguments name a command, only that command's tree is declared.
 */
import { Command } from './commander.js';

/** The top-level commands in help order, each with the tree module declaring it. */
const COMMANDS: ReadonlyArray<[string, () => Promise<Command>]> = [
  ['init', async () => (await import('./tree/init.js')).initCommand()],
  ['demo', async () => (await import('./tree/demo.js')).demoCommand()],
  ['volume', async () => (await import('./tree/volume.js')).volumeCommand()],
  ['copy', async () => (await import('./tree/copy.js')).copyCommand()],
  ['pair', async () => (await import('./tree/pair.js')).pairCommand()],
  ['library', async () => (await import('./tree/library.js')).libraryCommand()],
  ['tape', async () => (await import('./tree/library.js')).tapeCommand()],
  ['backup', async () => (await import('./tree/backup.js')).backupCommand()],
  ['catalog', async () => (await import('./tree/backup.js')).catalogCommand()],
  ['restore', async () => (await import('./tree/backup.js')).restoreCommand()],
  ['resources', async () => (await import('./tree/resources.js')).resourcesCommand()],
  ['fault', async () => (await import('./tree/fault.js')).faultCommand()],
  ['serve', async () => (await import('./tree/serve.js')).serveCommand()],
  ['jobs', async () => (await import('./tree/serve.js')).jobsCommand()],
  ['remote', async () => (await import('./tree/remote.js')).remoteCommand()],
  ['sync-wait', async () => (await import('./tree/remote.js')).syncWaitCommand()],
  ['bench', async () => (await import('./tree/bench.js')).benchCommand()],
];

/** Global options taking a value (their value is not the command name). */
const VALUE_OPTIONS = new Set(['--home', '--host']);

/**
 * The top-level commands `args` (process.argv without node and the script) need: the one
 * named, none for a bare --version, else all (help, no command, an unknown command: its
 * suggestion needs every name).
 */
export function commandsFor(args: readonly string[]): string[] {
  const all = COMMANDS.map(([name]) => name);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (VALUE_OPTIONS.has(a)) {
      i++;
      continue;
    }
    if (a.startsWith('-')) {
      if (a === '-h' || a === '--help') return all;
      continue;
    }
    return all.includes(a) ? [a] : all;
  }
  return args.includes('-V') || args.includes('--version') ? [] : all;
}

/**
 * Builds the `plexus` program; with `argv` (as in process.argv), only the commands it
 * needs (see `commandsFor`).
 */
export async function buildProgram(argv?: readonly string[]): Promise<Command> {
  const program = new Command('plexus')
    .description('Plexus: split mirrors, dirty-bitmap resync, replication and tape backup for volume files')
    .version('0.1.0')
    .option('--home <dir>', 'storage home (default: $PLEXUS_HOME or ./.plexus)')
    .option('--host <name>', 'host identity for access checks (default: $PLEXUS_HOST or the hostname)')
    .showSuggestionAfterError(true);
  const wanted = new Set(argv === undefined ? COMMANDS.map(([name]) => name) : commandsFor(argv.slice(2)));
  const commands = await Promise.all(COMMANDS.filter(([name]) => wanted.has(name)).map(([, declare]) => declare()));
  for (const c of commands) program.addCommand(c);
  return program;
}
