/**
 * Paths through the switch fabric (the SAN of JP 2001-095789, Fig. 1): which switches
 * connect the home's storage, a mover (backup server or copy device) and a library.
 * Pure functions over the `links` rows, so the search is tested without a catalog.
 */

/** The endpoint that stands for the home's volumes (the patent's storage device 200). */
export const STORAGE = 'storage';

/** One link: a switch port connected to an endpoint (storage, a mover, a library or another switch). */
export interface Link {
  switch: string;
  endpoint: string;
}

/** The fabric as adjacency: switch → what it connects, endpoint → the switches it hangs on. */
export class Fabric {
  private readonly bySwitch = new Map<string, Set<string>>();
  private readonly byEndpoint = new Map<string, Set<string>>();

  constructor(
    links: readonly Link[],
    private readonly switches: ReadonlySet<string>,
  ) {
    for (const l of links) {
      add(this.bySwitch, l.switch, l.endpoint);
      add(this.byEndpoint, l.endpoint, l.switch);
      // An inter-switch link is one cable: it works both ways.
      if (switches.has(l.endpoint)) {
        add(this.bySwitch, l.endpoint, l.switch);
        add(this.byEndpoint, l.switch, l.endpoint);
      }
    }
  }

  /** The switches `endpoint` is cabled to. */
  switchesOf(endpoint: string): string[] {
    return [...(this.byEndpoint.get(endpoint) ?? [])].filter((s) => this.switches.has(s)).sort();
  }

  /** What a switch connects, as configured. */
  endpointsOf(sw: string): string[] {
    return [...(this.bySwitch.get(sw) ?? [])].sort();
  }

  /**
   * The cheapest run of switches from `from` to `to` using only `usable` switches;
   * switches in `free` cost nothing (a stream already holds them), others one each.
   * Undefined when there is none. Ties go to the lexically first switch names, so the
   * choice is stable.
   */
  route(from: string, to: string, usable: (sw: string) => boolean, free: ReadonlySet<string> = new Set()): string[] | undefined {
    const goal = new Set(this.switchesOf(to).filter(usable));
    if (goal.size === 0) return undefined;
    // 0-1 breadth-first search (a deque): the weights are 0 or 1.
    const dist = new Map<string, number>();
    const prev = new Map<string, string | null>();
    const deque: string[] = [];
    for (const s of this.switchesOf(from).filter(usable)) {
      const d = free.has(s) ? 0 : 1;
      if (d < (dist.get(s) ?? Infinity)) {
        dist.set(s, d);
        prev.set(s, null);
        if (d === 0) deque.unshift(s);
        else deque.push(s);
      }
    }
    const done = new Set<string>();
    let best: string | undefined;
    while (deque.length > 0) {
      const s = deque.shift()!;
      if (done.has(s)) continue;
      done.add(s);
      // Nodes leave the deque in order of cost, so the first goal out is a cheapest one.
      if (goal.has(s)) {
        best = s;
        break;
      }
      for (const n of this.endpointsOf(s)) {
        if (!this.switches.has(n) || !usable(n)) continue;
        const d = dist.get(s)! + (free.has(n) ? 0 : 1);
        if (d < (dist.get(n) ?? Infinity)) {
          dist.set(n, d);
          prev.set(n, s);
          if (free.has(n)) deque.unshift(n);
          else deque.push(n);
        }
      }
    }
    if (best === undefined) return undefined;
    const path: string[] = [];
    for (let s: string | null | undefined = best; s; s = prev.get(s)) path.unshift(s);
    return path;
  }

  /**
   * The switches a stream needs: storage → mover → library. The second leg prefers
   * switches the first already uses (the default topology does both legs through one
   * switch). Undefined when either leg has no route.
   */
  streamPath(mover: string, library: string, usable: (sw: string) => boolean): string[] | undefined {
    const first = this.route(STORAGE, mover, usable);
    if (!first) return undefined;
    const second = this.route(mover, library, usable, new Set(first));
    if (!second) return undefined;
    return [...new Set([...first, ...second])];
  }
}

function add(m: Map<string, Set<string>>, k: string, v: string): void {
  const s = m.get(k) ?? new Set<string>();
  m.set(k, s);
  s.add(v);
}
