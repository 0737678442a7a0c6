import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, plexus } from '../helpers/home.js';
import { expectFailure, useScratch } from './cli-helpers.js';

const s = useScratch();

describe('plexus init', () => {
  it('creates the home with its marker and volumes directory', () => {
    expect(fs.existsSync(s.home)).toBe(false);
    const r = plexus(s.home, 'init');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('initialised');
    expect(r.stdout).toContain(s.home);
    const marker = path.join(s.home, 'plexus.json');
    expect(fs.existsSync(marker)).toBe(true);
    const json = JSON.parse(fs.readFileSync(marker, 'utf8')) as { format: number; created: string };
    expect(json.format).toBe(1);
    expect(Number.isNaN(Date.parse(json.created))).toBe(false);
    expect(fs.statSync(path.join(s.home, 'volumes')).isDirectory()).toBe(true);
  });

  it('says the home already exists on a second init, still exiting 0, and keeps the marker', () => {
    expect(plexus(s.home, 'init').code).toBe(0);
    const marker = path.join(s.home, 'plexus.json');
    const before = fs.readFileSync(marker, 'utf8');
    const r = plexus(s.home, 'init');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('already exists');
    expect(fs.readFileSync(marker, 'utf8')).toBe(before);
  });

  it('keeps volumes across a second init', () => {
    expect(plexus(s.home, 'init').code).toBe(0);
    expect(plexus(s.home, 'volume', 'create', 'keep', '--size', '64K').code).toBe(0);
    expect(plexus(s.home, 'init').code).toBe(0);
    const list = JSON.parse(plexus(s.home, 'volume', 'list', '--json').stdout) as Array<{ name: string }>;
    expect(list.map((v) => v.name)).toEqual(['keep']);
  });

  it('refuses a home that is a regular file', () => {
    fs.writeFileSync(path.join(s.dir, 'file'), 'not a directory');
    expectFailure(plexus(path.join(s.dir, 'file'), 'volume', 'list'), 'E_INVALID', 'not a directory');
  });

  it('refuses a home whose marker is not valid JSON', () => {
    expect(plexus(s.home, 'init').code).toBe(0);
    fs.writeFileSync(path.join(s.home, 'plexus.json'), '{ nope');
    expectFailure(plexus(s.home, 'volume', 'list'), 'E_CORRUPT');
  });

  it('uses $PLEXUS_HOME when --home is not given, else ./.plexus in the working directory', () => {
    const run = (env: Record<string, string>, ...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: s.dir, encoding: 'utf8', env: { ...process.env, PLEXUS_HOME: '', ...env } });

    const envHome = path.join(s.dir, 'env-home');
    const a = run({ PLEXUS_HOME: envHome }, 'init');
    expect(a.status).toBe(0);
    expect(fs.existsSync(path.join(envHome, 'plexus.json'))).toBe(true);

    const b = run({}, 'volume', 'create', 'here', '--size', '64K');
    expect(b.status, b.stderr).toBe(0);
    expect(fs.existsSync(path.join(s.dir, '.plexus', 'volumes', 'here.img.meta'))).toBe(true);
    expect(fs.existsSync(path.join(envHome, 'volumes', 'here.img.meta'))).toBe(false);

    // --home wins over $PLEXUS_HOME.
    const c = run({ PLEXUS_HOME: envHome }, '--home', s.home, 'volume', 'create', 'there', '--size', '64K');
    expect(c.status, c.stderr).toBe(0);
    expect(fs.existsSync(path.join(s.home, 'volumes', 'there.img.meta'))).toBe(true);
    expect(fs.readdirSync(path.join(envHome, 'volumes'))).toEqual([]);
  });

  it.each([
    ['volume list'],
    ['volume show v'],
    ['volume checksum v'],
    ['volume rm v'],
    ['copy a b'],
    ['pair display'],
    ['pair create a b'],
    ['library list'],
    ['tape list'],
    ['catalog jobs'],
    ['catalog rebuild'],
    ['backup run v'],
    ['backup schedule list'],
    ['resources list'],
    ['fault list'],
  ])('%s refuses a home that does not exist (a mistyped --home), naming it, and creates nothing', (command) => {
    const typo = path.join(s.dir, 'hoem');
    const r = plexus(typo, ...command.split(' '));
    expectFailure(r, 'E_NOENT', typo, 'plexus init');
    expect(fs.existsSync(typo)).toBe(false);
  });

  it('creates the home on first use only for commands that create something: volume create, library create, resources add', () => {
    for (const [i, args] of [
      ['volume', 'create', 'v', '--size', '64K'],
      ['library', 'create', 'lib', '--slots', '1', '--drives', '1', '--cartridge-size', '8M'],
      ['resources', 'add', 'server', 'srv9'],
    ].entries()) {
      const home = path.join(s.dir, `fresh${i}`);
      const r = plexus(home, ...args);
      expect(r.code, r.stderr).toBe(0);
      expect(fs.existsSync(path.join(home, 'plexus.json'))).toBe(true);
    }
  });
});
