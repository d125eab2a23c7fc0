/**
 * A tap on onnxruntime-web's own log lines (its C++ logger writes through the wasm module's print
 * functions). We need them for one thing: the "Node placements" report that tells which nodes ORT put
 * on the CPU, which no API exposes.
 *
 * Where the lines go:
 * - browser / worker: the wasm module binds `console.log` / `console.error` ONCE, when it is first
 *   initialised (the first session). `installConsoleTap()` must therefore run before that; `ort.ts`
 *   calls it on import. The tap forwards every call to the original console unless a listener swallows it.
 * - Node: the module writes with `fs.writeSync(1|2, line)`; `ort-log.node.ts` patches that and feeds
 *   {@link emitOrtLog}.
 */

/** Return true to keep the line from the console. */
export type OrtLogListener = (line: string) => boolean | void;

const listeners = new Set<OrtLogListener>();

/** Adds a listener; returns its removal. */
export function onOrtLog(listener: OrtLogListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** True while someone listens (adapters skip work otherwise). */
export function ortLogListened(): boolean {
  return listeners.size > 0;
}

/** Feeds one or more lines to the listeners; true when one of them swallowed every line. */
export function emitOrtLog(text: string): boolean {
  if (listeners.size === 0) return false;
  let swallowed = true;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let keep = true;
    for (const l of listeners) if (l(line) === true) keep = false;
    if (keep) swallowed = false;
  }
  return swallowed;
}

let consoleTapped = false;

/** Wraps console.log/console.error so ORT's wasm print functions pass through {@link emitOrtLog}. */
export function installConsoleTap(): void {
  if (consoleTapped || typeof console === 'undefined') return;
  consoleTapped = true;
  for (const method of ['log', 'error', 'warn'] as const) {
    const original = console[method];
    console[method] = (...args: unknown[]) => {
      if (listeners.size > 0 && args.length > 0 && emitOrtLog(args.map(String).join(' '))) return;
      original.apply(console, args);
    };
  }
}

export interface Placement {
  /** True when ORT printed its "Node placements" report (verbose logging reached us). */
  seen: boolean;
  /** "OpType (node name)" of every node placed on the CPU EP. */
  cpuNodes: string[];
  /** Node count per execution provider, e.g. { WebGpuExecutionProvider: 812, CPUExecutionProvider: 1 }. */
  perProvider: Record<string, number>;
}

/**
 * Parses ORT's verbose `VerifyEachNodeIsAssignedToAnEp` report:
 *   "Node placements" / " All nodes placed on [EP]. Number of nodes: N"
 *   or " Node(s) placed on [EP]. Number of nodes: N" followed by "  OpType (name)" lines.
 */
export function parsePlacement(lines: string[]): Placement {
  const out: Placement = { seen: false, cpuNodes: [], perProvider: {} };
  let current: string | undefined;
  for (const line of lines) {
    if (!line.includes('VerifyEachNodeIsAssignedToAnEp')) {
      current = undefined;
      continue;
    }
    const body = line.replace(/^.*VerifyEachNodeIsAssignedToAnEp\]/, '');
    if (/Node placements/.test(body)) {
      out.seen = true;
      continue;
    }
    const header = /placed on \[([^\]]+)\]\. Number of nodes: (\d+)/.exec(body);
    if (header) {
      out.seen = true;
      current = header[1];
      out.perProvider[current] = (out.perProvider[current] ?? 0) + Number(header[2]);
      continue;
    }
    const node = body.trim();
    // node lines read "OpType (node name)"; anything else (e.g. the "Some nodes were not assigned…" note) ends the list
    if (!/^[A-Za-z0-9_.:]+ \(.*\)$/.test(node)) {
      current = undefined;
      continue;
    }
    if (current && /cpuexecutionprovider/i.test(current)) out.cpuNodes.push(node);
  }
  return out;
}
