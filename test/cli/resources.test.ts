import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { plexus } from '../helpers/home.js';
import { expectFailure, ok, useScratch } from './cli-helpers.js';

const s = useScratch();

interface Listed {
  resources: Array<{ name: string; kind: string; state: string; jobId: number | null; stream: number | null; connects?: string[]; faults: string[] }>;
  links: Array<{ switch: string; endpoint: string }>;
}

const list = (...args: string[]): Listed => JSON.parse(ok(s.home, 'resources', 'list', '--json', ...args).stdout) as Listed;

describe('plexus resources', () => {
  it('lists the default topology with the library, its drives and cartridges; sets state; adds and removes', () => {
    ok(s.home, 'library', 'create', 'lib', '--slots', '2', '--drives', '2', '--cartridge-size', '1M', '--block-size', '4K');
    const all = list();
    expect(all.resources.map((r) => `${r.kind}:${r.name}`)).toEqual([
      'server:server0',
      'server:server1',
      'copy-device:xcopy0',
      'copy-device:xcopy1',
      'switch:fc0',
      'switch:fc1',
      'library:lib',
      'drive:lib/drive0',
      'drive:lib/drive1',
      'cartridge:LIB001L9',
      'cartridge:LIB002L9',
    ]);
    expect(all.resources.every((r) => r.state === 'available' && r.jobId === null)).toBe(true);
    expect(all.links.filter((l) => l.switch === 'fc1').map((l) => l.endpoint)).toEqual(['lib', 'server1', 'storage', 'xcopy1']);
    const table = ok(s.home, 'resources', 'list').stdout;
    expect(table).toMatch(/^NAME\s+KIND\s+STATE\s+JOB\s+STREAM\s+PID\s+DETAIL\n/);
    expect(table).toMatch(/\nSWITCH\s+CONNECTS\nfc0\s+lib, server0, storage, xcopy0\n/);

    expect(ok(s.home, 'resources', 'set', 'lib/drive1', '--state', 'unavailable').stdout).toBe('drive lib/drive1 is unavailable\n');
    expect(list('--kind', 'drive').resources.map((r) => `${r.name}:${r.state}`)).toEqual(['lib/drive0:available', 'lib/drive1:unavailable']);
    expectFailure(plexus(s.home, 'resources', 'rm', 'lib/drive0'), 'E_INVALID', 'library rm');

    expect(ok(s.home, 'resources', 'add', 'server', 'server2', '--connects', 'fc0').stdout).toBe('added server server2 connected to fc0\n');
    expect(ok(s.home, 'resources', 'add', 'switch', 'fc2', '--connects', 'storage,server2,lib').stdout).toBe('added switch fc2 connected to lib, server2, storage\n');
    expect(ok(s.home, 'resources', 'rm', 'fc2').stdout).toBe('removed fc2 and 3 links\n');
    expect(ok(s.home, 'resources', 'rm', 'server2').stdout).toBe('removed server2 and 1 link\n');
    expect(list().resources.some((r) => r.name === 'server2' || r.name === 'fc2')).toBe(false);
  });

  it('refuses bad input with one line and a stable code', () => {
    ok(s.home, 'init');
    expectFailure(plexus(s.home, 'resources', 'set', 'nope', '--state', 'unavailable'), 'E_NOENT', 'nope');
    expectFailure(plexus(s.home, 'resources', 'set', 'server0', '--state', 'in-use'), 'E_INVALID', 'in use');
    expectFailure(plexus(s.home, 'resources', 'add', 'switch', 'fc0'), 'E_EXISTS', 'fc0');
    expectFailure(plexus(s.home, 'resources', 'add', 'switch', 'fc9', '--connects', 'storage,ghost'), 'E_NOENT', 'ghost');
    // A resource a live job holds cannot be removed or freed by hand; marking it unavailable is recorded.
    // Job 4 runs in this process (it holds the job's lock: a reservation lives as long as that lock).
    const catalog = Catalog.openFile(path.join(s.home, 'catalog.db'));
    try {
      for (let id = 0; id < 4; ) {
        id = catalog.startJob({ target: 'v', targetSize: 0 });
        if (id < 4) catalog.finishJob(id, 'failed', 'filler');
      }
      const db = new Database(path.join(s.home, 'catalog.db'));
      db.prepare(`UPDATE resources SET state = 'in-use', job_id = 4, stream = 1, pid = ? WHERE name = 'server1'`).run(process.pid);
      db.close();
      expectFailure(plexus(s.home, 'resources', 'rm', 'server1'), 'E_STATE', 'job 4 stream 1');
      expect(ok(s.home, 'resources', 'set', 'server1', '--state', 'unavailable').stdout).toBe('server server1 is unavailable (held by job 4 stream 1: it sees this on its next check)\n');
    } finally {
      catalog.finishJob(4, 'failed', 'test over');
      catalog.close();
    }
  });
});

describe('plexus fault', () => {
  it('injects, lists and clears faults', () => {
    ok(s.home, 'init');
    expect(ok(s.home, 'fault', 'inject', 'xcopy1', '--after', '10M').stdout).toBe('injected fail-after 10485760 into xcopy1\n');
    ok(s.home, 'fault', 'inject', 'xcopy0', '--hang');
    ok(s.home, 'fault', 'inject', 'fc1', '--unavailable');
    const faults = JSON.parse(ok(s.home, 'fault', 'list', '--json').stdout) as Array<{ target: string; kind: string; afterBytes: number | null }>;
    expect(faults.map((f) => [f.target, f.kind, f.afterBytes])).toEqual([
      ['fc1', 'unavailable', null],
      ['xcopy0', 'hang', null],
      ['xcopy1', 'fail-after', 10485760],
    ]);
    expect(ok(s.home, 'fault', 'list').stdout).toMatch(/^TARGET\s+KIND\s+AFTER\s+SINCE\nfc1\s+unavailable\s+-\s+\S+\n/);

    expectFailure(plexus(s.home, 'fault', 'inject', 'ghost', '--hang'), 'E_NOENT', 'ghost');
    expectFailure(plexus(s.home, 'fault', 'inject', 'fc0'), 'E_INVALID', '--after');
    expectFailure(plexus(s.home, 'fault', 'inject', 'fc0', '--hang', '--unavailable'), 'E_INVALID');

    expect(ok(s.home, 'fault', 'clear', 'xcopy0').stdout).toBe('cleared 1 fault of xcopy0\n');
    expect(ok(s.home, 'fault', 'clear').stdout).toBe('cleared 2 faults\n');
  });
});
