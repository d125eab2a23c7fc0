import { describe, expect, it } from 'vitest';
import { classifyError, createEngineLoop } from './engine-loop';
import type { Engine, GenerateContext } from './engine-types';
import type { EngineEvent, GenerateParams } from './protocol';
import { EngineError } from './protocol';

const params: GenerateParams = {
  model: { repo: 'test/tiny-sdxl' },
  prompt: 'a koala',
  steps: 2,
  guidance: 5,
  scheduler: 'euler',
  width: 64,
  height: 64,
  seed: 3,
  numImages: 1,
};

function fakeEngine(over: Partial<Engine> = {}): Engine {
  const no = () => Promise.reject(new Error('not used'));
  return {
    probe: async (o) => ({ webgpu: true, shaderF16: false, adapterName: o.ortWasmBase }),
    load: no,
    generate: no,
    tokenize: async (_m, p) => ({ count: p.split(' ').length, limit: 75 }),
    inspectLora: no,
    listCache: async () => [],
    deleteCache: async () => {},
    ...over,
  };
}

function collect() {
  const events: { event: EngineEvent; transfer?: Transferable[] }[] = [];
  return { events, post: (event: EngineEvent, transfer?: Transferable[]) => events.push({ event, transfer }) };
}

describe('engine loop', () => {
  it('answers probe and tokenize with their events', async () => {
    const { events, post } = collect();
    const loop = createEngineLoop(fakeEngine(), post);
    await loop.handle({ type: 'probe', id: 'p', ortWasmBase: '/ort/' });
    await loop.handle({ type: 'tokenize', id: 't', model: params.model, prompt: 'a b c' });
    expect(events.map((e) => e.event)).toEqual([
      { type: 'probe', id: 'p', capabilities: { webgpu: true, shaderF16: false, adapterName: '/ort/' } },
      { type: 'tokens', id: 't', count: 3, limit: 75 },
    ]);
  });

  it('posts progress, transfers preview pixels, then the result', async () => {
    const { events, post } = collect();
    const png = new Blob([new Uint8Array([1, 2, 3])]);
    const engine = fakeEngine({
      generate: async (p, ctx: GenerateContext) => {
        ctx.onProgress({ phase: 'denoise', message: 'Step 1/2', done: 1, total: 2, elapsed: 0.1 });
        ctx.onPreview({ step: 1, width: 1, height: 1, rgba: new Uint8ClampedArray([1, 2, 3, 255]) });
        return {
          images: [{ png, width: p.width, height: p.height, seed: p.seed, parameters: 'x' }],
          stats: { timings: {}, readbacks: 2, truncatedTokens: { prompt: 0, negativePrompt: 0 }, backend: 'wasm', precision: 'fp32' },
        };
      },
    });
    const loop = createEngineLoop(engine, post);
    await loop.handle({ type: 'generate', id: 'g', params });
    expect(events.map((e) => e.event.type)).toEqual(['progress', 'preview', 'result']);
    expect(events[0]!.event).toMatchObject({ id: 'g', phase: 'denoise', done: 1, total: 2 });
    expect(events[1]!.transfer).toHaveLength(1);
    expect(events[2]!.event).toMatchObject({ id: 'g', params, images: [{ png, seed: 3 }] });
  });

  it('cancel aborts the running task, which ends with a cancelled error', async () => {
    const { events, post } = collect();
    const engine = fakeEngine({
      load: (_m, _p, ctx) =>
        new Promise((_res, rej) => ctx.signal.addEventListener('abort', () => rej(new DOMException('stop', 'AbortError')))),
    });
    const loop = createEngineLoop(engine, post);
    const running = loop.handle({ type: 'load', id: 'l', model: params.model });
    expect(loop.running.has('l')).toBe(true);
    await loop.handle({ type: 'cancel', id: 'c', target: 'l' });
    await running;
    expect(events.map((e) => e.event)).toEqual([
      { type: 'done', id: 'c' },
      { type: 'error', id: 'l', code: 'cancelled', message: 'Cancelled.' },
    ]);
    expect(loop.running.size).toBe(0);
  });

  it('maps thrown errors to protocol codes', () => {
    expect(classifyError(new EngineError('integrity', 'sha256 mismatch'))).toEqual({ code: 'integrity', message: 'sha256 mismatch' });
    expect(classifyError(new RangeError('Array buffer allocation failed')).code).toBe('out-of-memory');
    expect(classifyError(new DOMException('full', 'QuotaExceededError')).code).toBe('quota-exceeded');
    expect(classifyError(new Error('GPUDevice was lost: destroyed')).code).toBe('device-lost');
    expect(classifyError(new Error('boom'))).toEqual({ code: 'internal', message: 'boom' });
  });

  it('rejects unknown request types as bad input', async () => {
    const { events, post } = collect();
    await createEngineLoop(fakeEngine(), post).handle({ type: 'nope', id: 'x' } as never);
    expect(events[0]!.event).toMatchObject({ type: 'error', id: 'x', code: 'bad-input' });
  });
});
