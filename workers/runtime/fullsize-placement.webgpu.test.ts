/**
 * Full-size smoke test on WebGPU (Node, Dawn/lavapipe): the KOALA-700M U-Net at 1024×1024 (batch 2, CFG, fp16)
 * and the SDXL VAE decoder at 1024² (fp32, banded) are built from their configs and synthesized fp16/fp32
 * headers whose data reads as zeros, shape-inferred, and created as WebGPU sessions under the strict placement
 * check: every node on the WebGPU EP (a CPU node fails the test, naming it). Nothing is run.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { webgpuSuite } from '../../test/webgpu-node';
import { FIXTURES } from '../model/testing/fixtures.node.js';
import { synthWeights, type KeyList } from '../model/testing/synth';
import { buildUnetGraph, type UnetConfig } from '../model/unet';
import { buildVaeDecoderGraph, type VaeConfig } from '../model/vae';

const { skip } = await webgpuSuite();
const session = skip ? undefined : await import('./session');
const load = <T>(f: string): T => JSON.parse(readFileSync(resolve(FIXTURES, 'koala-configs', f), 'utf8')) as T;
const MiB = 2 ** 20;

describe.skipIf(skip)('full size at 1024² on WebGPU: build, shapes, placement', () => {
  it('KOALA-700M U-Net, batch 2, fp16: every node on WebGPU, every tensor within 128 MiB', { timeout: 600_000 }, async () => {
    const t0 = performance.now();
    const weights = await synthWeights(load<KeyList>('koala-700m-unet.keys.json'), {
      dtype: 'F16',
      zeros: true,
      name: 'diffusion_pytorch_model.fp16.safetensors',
    });
    const graph = buildUnetGraph(load<UnetConfig>('koala-700m-unet.json'), weights, {
      batch: 2,
      height: 128,
      width: 128,
      compute: 'float16',
    });
    expect(graph.outputs).toEqual([{ name: 'out', dtype: 'float32', shape: [2, 4, 128, 128] }]);
    expect(graph.stats.params).toBe(782_822_724);
    expect(graph.stats.largest.bytes).toBeLessThanOrEqual(128 * MiB);
    const s = await session!.createSession(graph, { backend: 'webgpu', name: 'unet 2x128x128', placement: 'strict' });
    try {
      expect(s.cpuNodes).toEqual([]);
    } finally {
      await s.release();
    }
    console.log(
      `[fullsize-placement] KOALA-700M U-Net 1024² B=2 fp16: ${graph.stats.nodes} nodes, all on WebGPU; session ${(s.createMs / 1000).toFixed(1)} s, total ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
  });

  it('SDXL VAE decoder at 1024², fp32, banded: every node on WebGPU', { timeout: 600_000 }, async () => {
    const weights = await synthWeights(load<KeyList>('sdxl-vae.keys.json'), {
      dtype: 'F32',
      zeros: true,
      name: 'diffusion_pytorch_model.safetensors',
    });
    const graph = buildVaeDecoderGraph(load<VaeConfig>('sdxl-vae.json'), weights, {
      batch: 1,
      height: 128,
      width: 128,
      compute: 'float32',
    });
    expect(graph.outputs[0]!.shape).toEqual([1, 3, 1024, 1024]);
    expect(graph.stats.largest.bytes).toBeLessThanOrEqual(128 * MiB);
    const s = await session!.createSession(graph, { backend: 'webgpu', name: 'vae_decoder 1x128x128', placement: 'strict' });
    try {
      expect(s.cpuNodes).toEqual([]);
    } finally {
      await s.release();
    }
    console.log(
      `[fullsize-placement] SDXL VAE decoder 1024² fp32: ${graph.stats.nodes} nodes, all on WebGPU; session ${(s.createMs / 1000).toFixed(1)} s`,
    );
  });
});
