/** The fused-op self-test (fused-ops-probe.ts) on the engine's WebGPU sessions, strict placement: what the page uses. */
import type { Compute } from '../model/graph';
import type { ProbeShapes } from '../model/fused-ops';
import { probeFusedOps, type FusedOpsProbe, type ProbeRunner } from './fused-ops-probe';
import { ort } from './ort';
import { createSession } from './session';

const webgpuRunner: ProbeRunner = async (graph, feeds) => {
  const s = await createSession(graph, { backend: 'webgpu', name: 'fused-op probe', placement: 'strict' });
  try {
    const o = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor('float32', t.data, t.dims)])));
    return Object.fromEntries(Object.entries(o).map(([k, t]) => [k, t.data as Float32Array]));
  } finally {
    await s.release();
  }
};

/** Which fused kernels this WebGPU adapter runs correctly, for a model of these widths. */
export function probeFusedOpsWebgpu(compute: Compute, shapes: ProbeShapes): Promise<FusedOpsProbe> {
  return probeFusedOps(compute, shapes, webgpuRunner, 'webgpu');
}
