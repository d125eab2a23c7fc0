/**
 * The worker's message loop, free of `self` so it runs in Node tests: decode an EngineRequest,
 * call the Engine, post EngineEvents. One AbortController per long request; `cancel` aborts it.
 */
import type { Engine } from './engine-types';
import type { EngineEvent, EngineRequest, ErrorCode } from './protocol';
import { EngineError } from './protocol';

export type Post = (event: EngineEvent, transfer?: Transferable[]) => void;

const CODES: readonly ErrorCode[] = [
  'webgpu-unavailable',
  'shader-f16-missing',
  'limits-too-low',
  'quota-exceeded',
  'network',
  'integrity',
  'device-lost',
  'out-of-memory',
  'bad-input',
  'cancelled',
  'internal',
];

/** Map anything thrown by the engine to a protocol error code and message. */
export function classifyError(err: unknown, signal?: AbortSignal): { code: ErrorCode; message: string } {
  if (err instanceof EngineError || (err instanceof Error && CODES.includes((err as { code?: ErrorCode }).code!))) {
    return { code: (err as EngineError).code, message: err.message };
  }
  const name = err instanceof Error || err instanceof DOMException ? err.name : '';
  const message = err instanceof Error || err instanceof DOMException ? err.message : String(err);
  if (name === 'AbortError' || signal?.aborted) return { code: 'cancelled', message: 'Cancelled.' };
  if (name === 'QuotaExceededError') return { code: 'quota-exceeded', message };
  if (err instanceof RangeError && /allocat|memory/i.test(message)) return { code: 'out-of-memory', message };
  if (/out of memory|allocation failed/i.test(message) || /\bOOM\b/.test(message)) return { code: 'out-of-memory', message };
  if (/device (was )?lost|GPUDevice.*lost/i.test(message)) return { code: 'device-lost', message };
  return { code: 'internal', message: message || 'Unknown error in the engine.' };
}

export function createEngineLoop(engine: Engine, post: Post) {
  const running = new Map<string, AbortController>();

  async function track<T>(id: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T | undefined> {
    const ac = new AbortController();
    running.set(id, ac);
    try {
      return await fn(ac.signal);
    } catch (err) {
      const { code, message } = classifyError(err, ac.signal);
      post({ type: 'error', id, code, message });
      return undefined;
    } finally {
      running.delete(id);
    }
  }

  async function handle(req: EngineRequest): Promise<void> {
    if (!req || typeof req !== 'object' || typeof (req as { id?: unknown }).id !== 'string') return;
    const { id } = req;
    const onProgress = (u: Parameters<Parameters<Engine['load']>[2]['onProgress']>[0]) => post({ type: 'progress', id, ...u });
    switch (req.type) {
      case 'probe':
        await track(id, async () => {
          const capabilities = await engine.probe({ ortWasmBase: req.ortWasmBase });
          post({ type: 'probe', id, capabilities });
        });
        return;
      case 'load':
        await track(id, async (signal) => {
          await engine.load(req.model, req.precision, { signal, onProgress, files: req.files });
          post({ type: 'done', id });
        });
        return;
      case 'generate':
        await track(id, async (signal) => {
          const out = await engine.generate(req.params, {
            signal,
            onProgress,
            files: req.files,
            onPreview: (f) => post({ type: 'preview', id, ...f }, [f.rgba.buffer as ArrayBuffer]),
          });
          if (signal.aborted) throw new EngineError('cancelled', 'Cancelled.');
          post({ type: 'result', id, images: out.images, stats: out.stats, params: req.params });
        });
        return;
      case 'cancel':
        running.get(req.target)?.abort();
        post({ type: 'done', id });
        return;
      case 'tokenize':
        await track(id, async () => {
          post({ type: 'tokens', id, ...(await engine.tokenize(req.model, req.prompt, req.promptStyle)) });
        });
        return;
      case 'inspect-lora':
        await track(id, async (signal) => {
          const report = await engine.inspectLora(req.model, req.precision, req.lora, { signal, onProgress, files: req.files });
          post({ type: 'lora-report', id, report });
        });
        return;
      case 'list-cache':
        await track(id, async () => {
          post({ type: 'cache-list', id, models: await engine.listCache() });
        });
        return;
      case 'delete-cache':
        await track(id, async () => {
          await engine.deleteCache(req.repo, req.commit);
          post({ type: 'done', id });
        });
        return;
      default:
        post({
          type: 'error',
          id,
          code: 'bad-input',
          message: `Unknown request type ${JSON.stringify((req as { type?: unknown }).type)}.`,
        });
    }
  }

  return { handle, running };
}
