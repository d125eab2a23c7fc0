/**
 * The worker's engine end to end in Node: the hub download (mock hub, IndexedDB via fake-indexeddb),
 * graph building, the SDXL pipeline on onnxruntime-web's WebGPU EP (Dawn over Mesa lavapipe) and the
 * PNG result — everything the page's worker does except postMessage.
 */
import 'fake-indexeddb/auto';
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { webgpuSuite } from '../test/webgpu-node';
import type { Engine, ProgressUpdate } from './engine-types';
import { startHubEnv, type HubEnv } from './hub/test-hub.node.js';
import { readPngText } from './pipeline/png';
import type { GenerateParams } from './protocol';

const { skip } = await webgpuSuite();

describe.skipIf(skip)('engine (Node WebGPU, mock hub)', () => {
  let env: HubEnv;
  let engine: Engine;
  beforeAll(async () => {
    env = await startHubEnv();
    const { createEngine } = await import('./engine');
    engine = createEngine();
  });
  afterAll(async () => env?.close());

  const params = (over: Partial<GenerateParams> = {}): GenerateParams => ({
    model: { repo: 'test/tiny-sdxl', hubUrl: env.hub.url },
    prompt: 'a photo of a cat',
    steps: 4,
    guidance: 5,
    scheduler: 'euler',
    width: 64,
    height: 64,
    seed: 42,
    numImages: 1,
    ...over,
  });

  it('probes, downloads once, generates a PNG with its parameters, and counts readbacks', { timeout: 600_000 }, async () => {
    const caps = await engine.probe({});
    expect(caps.webgpu).toBe(true);
    expect(caps.shaderF16).toBe(true);
    expect(JSON.parse(JSON.stringify(caps))).toEqual(caps); // plain data: postMessage-able
    const phases = new Set<string>();
    const progress: ProgressUpdate[] = [];
    const previews: number[] = [];
    const ctx = { signal: new AbortController().signal, onProgress: (p: ProgressUpdate) => (phases.add(p.phase), progress.push(p)), onPreview: (f: { step: number }) => previews.push(f.step) };
    const out = await engine.generate(params({ previewEvery: 2, numImages: 2 }), ctx);
    expect([...phases]).toEqual(expect.arrayContaining(['resolve', 'download', 'compile', 'denoise', 'decode', 'png']));
    expect(out.images.map((i) => i.seed)).toEqual([42, 43]);
    expect(out.stats.precision).toBe('fp16');
    // per image: one image read + one per preview (steps 2; step 4 is the last, no preview) — nothing per step
    expect(out.stats.readbacks).toBe(2 * (1 + 1));
    expect(previews).toEqual([2, 2]);
    const png = new Uint8Array(await out.images[0]!.png.arrayBuffer());
    const text = await readPngText(png);
    expect(text['parameters']).toBe(out.images[0]!.parameters);
    expect(text['parameters']).toMatch(/^a photo of a cat\nSteps: 4, Sampler: Euler, .*Seed: 42, Size: 64x64, Model: test\/tiny-sdxl/);
    const downloaded = env.hub.bytesServed();
    expect(downloaded).toBeGreaterThan(1_000_000);

    // second run: cached model and warm sessions: no bytes from the hub, same seed => same pixels
    const again = await engine.generate(params(), { ...ctx, onPreview: () => undefined });
    expect(env.hub.bytesServed()).toBe(downloaded);
    expect(new Uint8Array(await again.images[0]!.png.arrayBuffer())).toEqual(png);
    const cached = await engine.listCache();
    expect(cached).toHaveLength(1);
    expect(cached[0]).toMatchObject({ repo: 'test/tiny-sdxl', complete: true, variant: 'fp16' });
  });

  it('cancels a generation within a step', { timeout: 300_000 }, async () => {
    const ac = new AbortController();
    const steps: number[] = [];
    const run = engine.generate(params({ steps: 20 }), {
      signal: ac.signal,
      onPreview: () => undefined,
      onProgress: (p) => {
        if (p.phase === 'denoise') {
          steps.push(p.done);
          if (p.done === 3) ac.abort();
        }
      },
    });
    await expect(run).rejects.toMatchObject({ code: 'cancelled' });
    expect(Math.max(...steps)).toBe(3);
  });

  it('rejects bad input with a bad-input error naming the problem', async () => {
    const ctx = { signal: new AbortController().signal, onProgress: () => undefined, onPreview: () => undefined };
    await expect(engine.generate(params({ width: 60 }), ctx)).rejects.toMatchObject({ code: 'bad-input', message: expect.stringMatching(/multiple of 8/) });
  });

  it('counts prompt tokens with the model tokenizer', async () => {
    const t = await engine.tokenize({ repo: 'test/tiny-sdxl', hubUrl: env.hub.url }, 'a photo of a cat');
    // a · photo · of · a · cat: read plainly (no weights, one chunk), the same count for both tokenizers
    expect(t).toEqual({ count: 5, limit: 75, perEncoder: [5, 5], style: 'plain', chunks: 1, boundaries: [], maxChunks: 8 });
    const long = await engine.tokenize({ repo: 'test/tiny-sdxl', hubUrl: env.hub.url }, Array(100).fill('koala').join(' '));
    expect(long).toMatchObject({ count: 100, style: 'weighted', chunks: 2, boundaries: [75] });
  });
});
