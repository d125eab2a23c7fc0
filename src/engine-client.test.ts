import { describe, expect, it, vi } from 'vitest';
import type { EngineEvent, EngineRequest, GenerateParams } from '../workers/protocol';
import { EngineClient, EngineClientError, type TaskEvent, type WorkerLike } from './engine-client';

class FakeWorker implements WorkerLike {
  sent: EngineRequest[] = [];
  terminated = false;
  private listeners: Record<string, ((e: unknown) => void)[]> = {};
  postMessage(message: unknown): void {
    if (this.terminated) throw new Error('posted to a terminated worker');
    this.sent.push(message as EngineRequest);
  }
  terminate(): void {
    this.terminated = true;
  }
  addEventListener(type: string, listener: (e: never) => void): void {
    (this.listeners[type] ??= []).push(listener as (e: unknown) => void);
  }
  reply(event: EngineEvent): void {
    for (const l of this.listeners.message ?? []) l({ data: event });
  }
  fail(message: string): void {
    for (const l of this.listeners.error ?? []) l({ message });
  }
  last(type: EngineRequest['type']): EngineRequest {
    const r = [...this.sent].reverse().find((m) => m.type === type);
    if (!r) throw new Error(`no ${type} request sent`);
    return r;
  }
}

function setup(opts: { cancelTimeoutMs?: number } = {}) {
  const workers: FakeWorker[] = [];
  const restarts: string[] = [];
  const client = new EngineClient({
    createWorker: () => {
      const w = new FakeWorker();
      workers.push(w);
      return w;
    },
    ortWasmBase: '/ort/',
    onRestart: (i) => restarts.push(i.reason),
    ...opts,
  });
  return { client, workers, restarts, current: () => workers[workers.length - 1]! };
}

const params: GenerateParams = {
  model: { repo: 'test/tiny-sdxl' },
  prompt: 'a koala',
  steps: 4,
  guidance: 5,
  scheduler: 'euler',
  width: 64,
  height: 64,
  seed: 1,
  numImages: 1,
};

const tick = () => new Promise((r) => setTimeout(r, 0));

function resultFor(id: string): EngineEvent {
  return {
    type: 'result',
    id,
    images: [{ png: new Blob([new Uint8Array([137, 80])]), width: 64, height: 64, seed: 1, parameters: 'a koala' }],
    stats: { timings: {}, readbacks: 1, truncatedTokens: { prompt: 0, negativePrompt: 0 }, backend: 'webgpu', precision: 'fp32' },
    params,
  };
}

describe('EngineClient', () => {
  it('probes once per worker and passes the ORT asset base', async () => {
    const { client, current } = setup();
    const a = client.probe();
    const b = client.probe();
    expect(current().sent).toHaveLength(1);
    const req = current().last('probe');
    expect(req).toMatchObject({ type: 'probe', ortWasmBase: '/ort/' });
    current().reply({ type: 'probe', id: req.id, capabilities: { webgpu: true, shaderF16: false, adapterName: 'swiftshader' } });
    expect(await a).toEqual({ webgpu: true, shaderF16: false, adapterName: 'swiftshader' });
    expect(await b).toBe(await a);
  });

  it('runs generates one at a time, reports queue position, and forwards progress and previews', async () => {
    const { client, current } = setup();
    const first = client.generate(params);
    const second = client.generate({ ...params, seed: 2 });
    const ev1: TaskEvent[] = [];
    const ev2: TaskEvent[] = [];
    first.subscribe((e) => ev1.push(e));
    second.subscribe((e) => ev2.push(e));
    await tick();
    const w = current();
    expect(w.sent.filter((m) => m.type === 'generate')).toHaveLength(1);
    expect(ev2).toContainEqual({ type: 'queued', id: second.id, position: 1 });
    w.reply({ type: 'progress', id: first.id, phase: 'denoise', message: 'Step 1/4', done: 1, total: 4, elapsed: 0.5, rate: 2 });
    w.reply({ type: 'preview', id: first.id, step: 1, width: 2, height: 1, rgba: new Uint8ClampedArray(8) });
    expect(ev1.map((e) => e.type)).toEqual(['started', 'progress', 'preview']);
    w.reply(resultFor(first.id));
    const r = await first.result;
    expect(r.images[0]!.width).toBe(64);
    await tick();
    const gens = w.sent.filter((m) => m.type === 'generate');
    expect(gens).toHaveLength(2);
    expect(gens[1]!.id).toBe(second.id);
    expect((gens[1] as Extract<EngineRequest, { type: 'generate' }>).params.seed).toBe(2);
    expect(ev2.some((e) => e.type === 'started')).toBe(true);
  });

  it('rejects with the typed engine error and moves on to the next task', async () => {
    const { client, current } = setup();
    const a = client.generate(params);
    const b = client.generate(params);
    await tick();
    current().reply({ type: 'error', id: a.id, code: 'network', message: 'hub unreachable' });
    await expect(a.result).rejects.toMatchObject({ name: 'EngineClientError', code: 'network', message: 'hub unreachable' });
    await tick();
    expect(current().last('generate').id).toBe(b.id);
  });

  it('cancels a queued task without sending it, and a running one through the worker', async () => {
    const { client, current } = setup();
    const a = client.generate(params);
    const b = client.generate(params);
    await tick();
    b.cancel();
    await expect(b.result).rejects.toMatchObject({ code: 'cancelled' });
    a.cancel();
    const cancel = current().last('cancel') as Extract<EngineRequest, { type: 'cancel' }>;
    expect(cancel.target).toBe(a.id);
    current().reply({ type: 'error', id: a.id, code: 'cancelled', message: 'Cancelled.' });
    await expect(a.result).rejects.toMatchObject({ code: 'cancelled' });
    await tick();
    expect(
      current()
        .sent.filter((m) => m.type === 'generate')
        .map((m) => m.id),
    ).toEqual([a.id]);
    expect(client.busy).toBe(false);
  });

  it('restarts the worker when a cancel is not answered in time', async () => {
    vi.useFakeTimers();
    try {
      const { client, workers, restarts } = setup({ cancelTimeoutMs: 1000 });
      const a = client.generate(params);
      await vi.advanceTimersByTimeAsync(0);
      a.cancel();
      const rejected = expect(a.result).rejects.toMatchObject({ code: 'cancelled' });
      await vi.advanceTimersByTimeAsync(1001);
      await rejected;
      expect(workers).toHaveLength(2);
      expect(workers[0]!.terminated).toBe(true);
      expect(restarts).toEqual(['cancelled']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a worker crash rejects everything pending with worker-crashed and starts a fresh worker', async () => {
    const { client, workers, restarts, current } = setup();
    const caps = client.probe();
    const a = client.generate(params);
    const b = client.generate(params);
    const tok = client.tokenize({ repo: 'x/y' }, 'hi');
    await tick();
    workers[0]!.fail('RuntimeError: unreachable');
    for (const p of [caps, a.result, b.result, tok]) {
      await expect(p).rejects.toBeInstanceOf(EngineClientError);
      await expect(p).rejects.toMatchObject({ code: 'worker-crashed' });
    }
    expect(workers).toHaveLength(2);
    expect(workers[0]!.terminated).toBe(true);
    expect(restarts).toEqual(['worker-crashed']);
    // Events from the dead worker are ignored; the new worker serves new requests.
    const c = client.generate(params);
    await tick();
    expect(current()).toBe(workers[1]);
    expect(current().last('generate').id).toBe(c.id);
    current().reply(resultFor(c.id));
    await expect(c.result).resolves.toMatchObject({ type: 'result' });
    expect(client.pendingCount).toBe(0);
  });

  it.each(['device-lost', 'out-of-memory'] as const)('%s rejects all pending and restarts the worker', async (code) => {
    const { client, workers, restarts } = setup();
    const a = client.generate(params);
    const b = client.generate(params);
    await tick();
    workers[0]!.reply({ type: 'error', id: a.id, code, message: 'GPU went away' });
    await expect(a.result).rejects.toMatchObject({ code });
    await expect(b.result).rejects.toMatchObject({ code });
    expect(workers).toHaveLength(2);
    expect(restarts).toEqual([code]);
  });

  it('resolves tokenize, list-cache and delete-cache', async () => {
    const { client, current } = setup();
    const t = client.tokenize({ repo: 'a/b' }, 'a koala');
    const l = client.listCache();
    const d = client.deleteCache('a/b');
    const w = current();
    w.reply({ type: 'tokens', id: w.last('tokenize').id, count: 2, limit: 75 });
    w.reply({ type: 'cache-list', id: w.last('list-cache').id, models: [] });
    w.reply({ type: 'done', id: w.last('delete-cache').id });
    expect(await t).toEqual({ count: 2, limit: 75 });
    expect(await l).toEqual([]);
    expect(await d).toBeUndefined();
  });
});
