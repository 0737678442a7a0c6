/** Which command trees the program declares for an argument list (the rest are not loaded). */
import { describe, expect, it } from 'vitest';
import { buildProgram, commandsFor } from '../../src/cli/program.js';

describe('commandsFor', () => {
  const all = ['init', 'demo', 'volume', 'copy', 'pair', 'library', 'tape', 'backup', 'catalog', 'restore', 'resources', 'fault', 'serve', 'jobs', 'remote', 'sync-wait', 'bench'];
  it.each([
    [['volume', 'list'], ['volume']],
    [['--home', 'volume', 'pair', 'display'], ['pair']],
    [['--home=h', '--host', 'x', 'copy', 'a', 'b'], ['copy']],
    [['--version'], []],
    [['-V'], []],
    [['volume', '--help'], ['volume']],
    [['--help'], all],
    [['--help', 'volume'], all],
    [[], all],
    [['help', 'volume'], all],
    [['volum', 'list'], all],
  ])('%j needs %j', (args, want) => {
    expect(commandsFor(args)).toEqual(want);
  });

  it('declares every command without argv, and only the named one with it', async () => {
    expect((await buildProgram()).commands.map((c) => c.name())).toEqual(all);
    expect((await buildProgram(['node', 'plexus', 'tape', 'list'])).commands.map((c) => c.name())).toEqual(['tape']);
  });
});
