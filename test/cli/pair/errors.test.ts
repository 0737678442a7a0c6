/** The errors bad `pair` commands give: one stderr line with a code, exit 1. */
import { describe, expect, it } from 'vitest';
import { plexus } from '../../helpers/home.js';
import { expectFailure, ok, useScratch } from '../cli-helpers.js';
import { display, volumes } from './pair-helpers.js';

const s = useScratch();

describe('bad pair commands', () => {
  it('selectors: a primary and --group, or neither, is E_INVALID with one line', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's', '--group', 'g');
    for (const verb of ['split', 'resync']) {
      expectFailure(plexus(s.home, 'pair', verb, 'p', '--group', 'g'), 'E_INVALID', 'not both');
      expectFailure(plexus(s.home, 'pair', verb), 'E_INVALID', 'give a primary volume or --group');
    }
    expectFailure(plexus(s.home, 'pair', 'wait', '--state', 'PAIR'), 'E_INVALID', 'give a primary volume or --group');
    expectFailure(plexus(s.home, 'pair', 'display', 'p', '--group', 'g'), 'E_INVALID', 'not both');
    expectFailure(plexus(s.home, 'pair', 'split', '--group', 'g', '--plex', 's'), 'E_INVALID', '--plex needs a primary');
    expect(display(s.home)[0]!.state).toBe('PAIR'); // nothing happened
  });

  it('create: E_SIZE for a smaller secondary, E_NOENT for unknown volumes, E_INVALID and E_EXISTS for bad pairings', async () => {
    await volumes(s.home, 8, 'p', 's', 't');
    await volumes(s.home, 16, 'big');
    // A larger secondary is fine (larger-secondary.test.ts); a smaller one is not.
    expectFailure(plexus(s.home, 'pair', 'create', 'big', 'p'), 'E_SIZE', 'p', 'big', `${8 << 20}`, `${16 << 20}`);
    expectFailure(plexus(s.home, 'pair', 'create', 'p', 'nope'), 'E_NOENT', 'nope');
    expectFailure(plexus(s.home, 'pair', 'create', 'ghost', 's'), 'E_NOENT', 'ghost');
    expectFailure(plexus(s.home, 'pair', 'create', 'p', 'p'), 'E_INVALID', 'itself');
    expectFailure(plexus(s.home, 'pair', 'create', 'p', 's', '--granularity', '3000'), 'E_INVALID', 'granularity');
    expect(display(s.home)).toEqual([]);

    ok(s.home, 'pair', 'create', 'p', 's');
    expectFailure(plexus(s.home, 'pair', 'create', 't', 's'), 'E_EXISTS', 'volume s', 'p → s');
    expectFailure(plexus(s.home, 'pair', 'split', 'nope'), 'E_NOENT', 'no pair for volume nope');
    expectFailure(plexus(s.home, 'pair', 'resync', 'p', '--plex', 't'), 'E_NOENT', 'p → t');
    expectFailure(plexus(s.home, 'pair', 'delete', 't'), 'E_NOENT', 'volume t');
  });
});
