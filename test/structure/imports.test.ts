/**
 * The shape of the source tree: no import cycle between capability folders, and a CLI
 * command tree that loads nothing but commander and a few constant modules (the run
 * modules, the library, SQLite and the addon load when a command runs).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

/** Every .ts file under src, relative to it. */
function sources(dir = SRC): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [path.relative(SRC, p)] : [];
  });
}

/**
 * The modules a file loads at run time (type-only imports are erased), as src-relative
 * paths or package names; with `dynamic`, also those it loads with `import()`.
 */
function runtimeImports(file: string, dynamic = false): string[] {
  const text = fs.readFileSync(path.join(SRC, file), 'utf8');
  const specs: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?([^;]*?)\s+from\s+'([^']+)'/gms)) {
    if (m[1]) continue;
    const names = /^\{([^}]*)\}$/.exec(m[2]!.trim());
    if (names && names[1]!.split(',').every((n) => n.trim() === '' || n.trim().startsWith('type '))) continue;
    specs.push(m[3]!);
  }
  if (dynamic) for (const m of text.matchAll(/import\('([^']+)'\)/g)) specs.push(m[1]!);
  return specs.map((spec) => (spec.startsWith('.') ? path.relative(SRC, path.resolve(path.dirname(path.join(SRC, file)), spec)).replace(/\.js$/, '.ts') : spec));
}

describe('source structure', () => {
  it('has no import cycle between the folders of src (backup, resources, tape, catalog, mirror, volumes, ...)', () => {
    const folder = (f: string): string => (f.includes('/') ? f.split('/')[0]! : '.');
    const edges = new Map<string, Set<string>>();
    for (const f of sources()) {
      for (const t of runtimeImports(f).filter((t) => t.endsWith('.ts'))) {
        if (folder(f) === folder(t) || folder(f) === '.') continue;
        if (!edges.has(folder(f))) edges.set(folder(f), new Set());
        edges.get(folder(f))!.add(folder(t));
      }
    }
    const cycles: string[] = [];
    const walk = (start: string, at: string, seen: string[]): void => {
      for (const next of edges.get(at) ?? []) {
        if (next === start) cycles.push([...seen, next].join(' -> '));
        else if (!seen.includes(next)) walk(start, next, [...seen, next]);
      }
    };
    for (const f of edges.keys()) walk(f, f, [f]);
    expect(cycles).toEqual([]);
  });

  it('has no import cycle between files either (faults.ts, inventory.ts and streams.ts import one way)', () => {
    const edges = new Map(sources().map((f) => [f, runtimeImports(f).filter((t) => t.endsWith('.ts'))]));
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (f: string): void => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        cycles.push([...stack.slice(stack.indexOf(f)), f].join(' -> '));
        return;
      }
      state.set(f, 'open');
      stack.push(f);
      for (const t of edges.get(f) ?? []) visit(t);
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of edges.keys()) visit(f);
    expect(cycles).toEqual([]);
    // The fault rows live with the faults: the inventory and the streams read them there.
    expect(edges.get('resources/faults.ts')!.filter((t) => t.startsWith('resources/'))).toEqual(['resources/log.ts', 'resources/sync.ts']);
    expect(edges.get('resources/inventory.ts')).toContain('resources/faults.ts');
    expect(edges.get('resources/streams.ts')).toContain('resources/faults.ts');
  });

  it('declares the CLI command tree without loading a run module, the library, SQLite or the addon', () => {
    const light = new Set(['cli/lazy.ts', 'cli/commander.ts', 'mirror/states.ts', 'resources/kinds.ts', 'bench/defaults.ts']);
    const seen = new Set<string>();
    const heavy: string[] = [];
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      // program.ts imports the tree modules with import(); a tree module's import() is its run module, loaded when it runs.
      for (const t of runtimeImports(file, file === 'cli/program.ts')) {
        if (t.startsWith('node:') || t === 'commander') continue;
        if (t.startsWith('cli/tree/') || light.has(t)) visit(t);
        else heavy.push(`${file} -> ${t}`);
      }
    };
    visit('cli/program.ts');
    expect(heavy).toEqual([]);
    expect([...seen].filter((f) => f.startsWith('cli/tree/')).length).toBeGreaterThanOrEqual(10);
  });
});
