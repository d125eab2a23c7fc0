/**
 * The engine's WebGPU backend refuses a session with an undeclared CPU node (strict placement) and names the
 * node; the same node declared by the graph (BuiltGraph.allowCpu) is accepted and runs.
 */
import { describe, expect, it } from 'vitest';
import { webgpuSuite } from '../../test/webgpu-node';
import { GraphBuilder } from '../model/graph';
import { WeightIndex } from '../model/weights';

const { skip } = await webgpuSuite();
const mod = skip ? undefined : await import('./webgpu-backend');

/** x + float(ids): WebGPU has no int64 Cast, so ORT puts that one node on the CPU. */
function castGraph() {
  const g = new GraphBuilder({ name: 'cast', weights: new WeightIndex([]), compute: 'float32' });
  const x = g.input('x', 'float32', [1, 8]);
  const ids = g.input('ids', 'int64', [1, 8]);
  const f = g.scope('pool', () => g.op1('Cast', [ids], { to: 1 }));
  g.output(g.op1('Add', [x, f]), 'out');
  return g.build();
}

describe.skipIf(skip)('WebGPU backend placement (Node, Dawn)', () => {
  it('an undeclared CPU node fails session creation, naming the node', async () => {
    const backend = mod!.createWebgpuBackend();
    await expect(backend.createSession(castGraph(), { label: 'cast-test' })).rejects.toThrow(
      /cast-test: 1 node\(s\) would run on the CPU instead of WebGPU: Cast \(pool\/Cast\)/,
    );
  });

  it('a declared one is accepted and the session runs', async () => {
    const backend = mod!.createWebgpuBackend();
    const graph = castGraph();
    graph.allowCpu = [/^Cast \(pool\/Cast\)$/];
    const s = await backend.createSession(graph, { label: 'cast-test' });
    try {
      const out = await s.run({
        x: backend.tensor('float32', Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), [1, 8]),
        ids: backend.tensor('int64', BigInt64Array.from([1, 2, 3, 4, 5, 6, 7, 8].map(BigInt)), [1, 8]),
      });
      expect(Array.from(await backend.read(out['out']!))).toEqual([2, 4, 6, 8, 10, 12, 14, 16]);
    } finally {
      await s.release();
    }
  });
});
