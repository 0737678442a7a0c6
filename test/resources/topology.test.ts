import { describe, expect, it } from 'vitest';
import { Fabric, type Link } from '../../src/resources/topology.js';

const link = (sw: string, ...endpoints: string[]): Link[] => endpoints.map((endpoint) => ({ switch: sw, endpoint }));

describe('switch fabric', () => {
  // storage ─ core ─ edgeA ─ srvA ─ edgeA ─ lib;  core ─ edgeB ─ srvB;  edgeB ─ lib
  const links = [...link('core', 'storage', 'edgeA', 'edgeB'), ...link('edgeA', 'srvA', 'lib'), ...link('edgeB', 'srvB', 'lib')];
  const fabric = new Fabric(links, new Set(['core', 'edgeA', 'edgeB']));
  const all = (): boolean => true;

  it('routes across inter-switch links both ways and reuses the first leg', () => {
    expect(fabric.route('storage', 'srvA', all)).toEqual(['core', 'edgeA']);
    // edgeB → core is the reverse of core's link to edgeB.
    expect(fabric.streamPath('srvB', 'lib', all)).toEqual(['core', 'edgeB']);
    expect(fabric.streamPath('srvA', 'lib', all)).toEqual(['core', 'edgeA']);
  });

  it('avoids unusable switches or finds no path', () => {
    expect(fabric.streamPath('srvA', 'lib', (s) => s !== 'edgeA')).toBeUndefined();
    expect(fabric.route('srvA', 'lib', (s) => s !== 'edgeA')).toBeUndefined();
    expect(fabric.streamPath('srvB', 'lib', (s) => s !== 'edgeA')).toEqual(['core', 'edgeB']);
    expect(fabric.route('storage', 'nowhere', all)).toBeUndefined();
  });

  it('prefers switches already held (cost 0) for the second leg', () => {
    // lib hangs on edgeA and on a direct switch d; from srvA, edgeA is free once held.
    const f = new Fabric([...links, ...link('d', 'srvA', 'lib')], new Set(['core', 'edgeA', 'edgeB', 'd']));
    expect(f.route('srvA', 'lib', all)).toEqual(['d']);
    expect(f.route('srvA', 'lib', all, new Set(['edgeA']))).toEqual(['edgeA']);
    expect(f.streamPath('srvA', 'lib', all)).toEqual(['core', 'edgeA']);
  });
});
