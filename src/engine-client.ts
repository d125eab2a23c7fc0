/**
 * The only door from the page to the engine worker: a typed promise API over workers/protocol.ts.
 *
 * - One worker at a time. `load` and `generate` run one after another (a FIFO queue); probe, tokenize and
 *   cache requests go straight through.
 * - `generate` returns a handle: `result` (a promise), `subscribe` (progress/preview/queued events), `cancel`.
 * - A worker crash (`error`/`messageerror` event), a `device-lost` or an `out-of-memory` error rejects
 *   every pending request with an EngineClientError, terminates the worker and starts a fresh one
 *   (the engine's model cache in IndexedDB survives; the page's gallery is untouched).
 * - A cancel the worker does not answer within `cancelTimeoutMs` restarts the worker: cancel always works.
 */
import type {
  CachedModel,
  Capabilities,
  EngineEvent,
  EngineRequest,
  ErrorCode,
  GenerateParams,
  LoraRef,
  LoraReport,
  ModelSource,
  Precision,
  PreviewEvent,
  ProgressEvent,
  PromptStyle,
  ResultEvent,
} from '../workers/protocol';

export type ClientErrorCode = ErrorCode | 'worker-crashed';

export class EngineClientError extends Error {
  readonly code: ClientErrorCode;
  constructor(code: ClientErrorCode, message: string) {
    super(message);
    this.name = 'EngineClientError';
    this.code = code;
  }
}

/** What the client needs from a Worker (a fake one in tests). */
export interface WorkerLike {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  terminate(): void;
  addEventListener(type: 'message', listener: (e: MessageEvent) => void): void;
  addEventListener(type: 'error' | 'messageerror', listener: (e: Event) => void): void;
}

export type TaskEvent = ProgressEvent | PreviewEvent | { type: 'queued'; id: string; position: number } | { type: 'started'; id: string };

export interface TaskHandle<T> {
  id: string;
  result: Promise<T>;
  subscribe(listener: (e: TaskEvent) => void): () => void;
  cancel(): void;
}

export interface RestartInfo {
  reason: ClientErrorCode;
  message: string;
  restarts: number;
}

export interface EngineClientOptions {
  createWorker: () => WorkerLike;
  /** Sent with every probe: where onnxruntime-web's .wasm/.mjs files are served. */
  ortWasmBase?: string;
  /** Called after the worker was replaced. */
  onRestart?: (info: RestartInfo) => void;
  /** A cancelled task the worker has not ended after this long gets the worker restarted. Default 8 s. */
  cancelTimeoutMs?: number;
}

type Terminal = 'probe' | 'tokens' | 'cache-list' | 'done' | 'result' | 'lora-report';

interface Pending {
  id: string;
  request: EngineRequest;
  terminal: Terminal;
  heavy: boolean;
  resolve: (e: EngineEvent) => void;
  reject: (err: EngineClientError) => void;
  listeners: Set<(e: TaskEvent) => void>;
  transfer?: Transferable[];
  cancelTimer?: ReturnType<typeof setTimeout>;
}

const FATAL: readonly ClientErrorCode[] = ['device-lost', 'out-of-memory', 'worker-crashed'];

export class EngineClient {
  private worker: WorkerLike;
  private readonly opts: EngineClientOptions;
  private readonly pending = new Map<string, Pending>();
  private readonly queue: Pending[] = [];
  private active: Pending | null = null;
  private nextId = 1;
  private probePromise: Promise<Capabilities> | null = null;
  private restarts = 0;
  private disposed = false;

  constructor(opts: EngineClientOptions) {
    this.opts = opts;
    this.worker = this.spawn();
  }

  /** Number of worker restarts so far. */
  get restartCount(): number {
    return this.restarts;
  }

  /** Requests sent or queued and not yet answered. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Whether a load/generate is running or queued. */
  get busy(): boolean {
    return this.active !== null || this.queue.length > 0;
  }

  private spawn(): WorkerLike {
    const w = this.opts.createWorker();
    w.addEventListener('message', (e: MessageEvent) => {
      if (w === this.worker) this.onEvent(e.data as EngineEvent);
    });
    const crash = (what: string) => (e: Event) => {
      if (w !== this.worker) return;
      const detail = (e as ErrorEvent).message;
      this.restart('worker-crashed', `The engine worker crashed (${what}${detail ? `: ${detail}` : ''}).`);
    };
    w.addEventListener('error', crash('error'));
    w.addEventListener('messageerror', crash('unreadable message'));
    return w;
  }

  private newId(prefix: string): string {
    return `${prefix}-${this.nextId++}`;
  }

  private enqueue<T extends EngineEvent>(
    request: EngineRequest,
    terminal: Terminal,
    heavy: boolean,
    transfer?: Transferable[],
  ): { pending: Pending; result: Promise<T> } {
    if (this.disposed) throw new EngineClientError('internal', 'The engine client was disposed.');
    let resolve!: (e: EngineEvent) => void;
    let reject!: (err: EngineClientError) => void;
    const result = new Promise<T>((res, rej) => {
      resolve = res as (e: EngineEvent) => void;
      reject = rej;
    });
    const pending: Pending = { id: request.id, request, terminal, heavy, resolve, reject, listeners: new Set(), transfer };
    this.pending.set(request.id, pending);
    if (heavy) {
      this.queue.push(pending);
      queueMicrotask(() => this.pump());
    } else {
      this.worker.postMessage(request, transfer ?? []);
    }
    return { pending, result };
  }

  private emit(p: Pending, e: TaskEvent): void {
    for (const l of p.listeners) {
      try {
        l(e);
      } catch (err) {
        console.error('engine-client listener failed', err);
      }
    }
  }

  private pump(): void {
    if (this.active || this.disposed) return;
    const next = this.queue.shift();
    if (!next) return;
    this.active = next;
    this.emit(next, { type: 'started', id: next.id });
    this.worker.postMessage(next.request, next.transfer ?? []);
    this.queue.forEach((q, i) => this.emit(q, { type: 'queued', id: q.id, position: i + 1 }));
  }

  private settle(p: Pending): void {
    this.pending.delete(p.id);
    if (p.cancelTimer) clearTimeout(p.cancelTimer);
    if (this.active === p) {
      this.active = null;
      queueMicrotask(() => this.pump());
    }
  }

  private onEvent(e: EngineEvent): void {
    if (!e || typeof e !== 'object' || typeof e.id !== 'string') return;
    const p = this.pending.get(e.id);
    if (!p) return;
    if (e.type === 'progress' || e.type === 'preview') {
      this.emit(p, e);
      return;
    }
    if (e.type === 'error') {
      this.settle(p);
      p.reject(new EngineClientError(e.code, e.message));
      if (FATAL.includes(e.code)) this.restart(e.code, e.message);
      return;
    }
    if (e.type === p.terminal) {
      this.settle(p);
      p.resolve(e);
    }
  }

  /** Reject everything pending with `code`, replace the worker, probe again. */
  restart(code: ClientErrorCode, message: string): void {
    if (this.disposed) return;
    const all = [...this.pending.values()];
    this.pending.clear();
    this.queue.length = 0;
    this.active = null;
    for (const p of all) {
      if (p.cancelTimer) clearTimeout(p.cancelTimer);
      p.reject(new EngineClientError(code, message));
    }
    try {
      this.worker.terminate();
    } catch {
      /* already gone */
    }
    this.restarts++;
    this.probePromise = null;
    this.worker = this.spawn();
    this.opts.onRestart?.({ reason: code, message, restarts: this.restarts });
  }

  /** WebGPU capabilities of this browser (cached per worker). */
  probe(): Promise<Capabilities> {
    if (!this.probePromise) {
      const id = this.newId('probe');
      const { result } = this.enqueue<Extract<EngineEvent, { type: 'probe' }>>(
        { type: 'probe', id, ortWasmBase: this.opts.ortWasmBase },
        'probe',
        false,
      );
      const p = result.then((e) => e.capabilities);
      p.catch(() => {
        if (this.probePromise === p) this.probePromise = null;
      });
      this.probePromise = p;
    }
    return this.probePromise;
  }

  tokenize(model: ModelSource, prompt: string, promptStyle?: PromptStyle): Promise<Omit<Extract<EngineEvent, { type: 'tokens' }>, 'type' | 'id'>> {
    const id = this.newId('tok');
    return this.enqueue<Extract<EngineEvent, { type: 'tokens' }>>({ type: 'tokenize', id, model, prompt, promptStyle }, 'tokens', false).result.then(
      // eslint-disable-next-line @typescript-eslint/no-unused-vars
      ({ type, id: _id, ...rest }) => rest,
    );
  }

  listCache(): Promise<CachedModel[]> {
    const id = this.newId('cache');
    return this.enqueue<Extract<EngineEvent, { type: 'cache-list' }>>({ type: 'list-cache', id }, 'cache-list', false).result.then(
      (e) => e.models,
    );
  }

  deleteCache(repo: string, commit?: string): Promise<void> {
    const id = this.newId('del');
    return this.enqueue({ type: 'delete-cache', id, repo, commit }, 'done', false).result.then(() => undefined);
  }

  load(model: ModelSource, opts: { precision?: Precision; files?: File[] } = {}): TaskHandle<void> {
    const id = this.newId('load');
    const { pending, result } = this.enqueue({ type: 'load', id, model, precision: opts.precision, files: opts.files }, 'done', true);
    return this.handle(
      pending,
      result.then(() => undefined),
    );
  }

  /** Loads the model if needed (a heavy task: queued like load), fetches the LoRA and reports how its keys match. */
  inspectLora(model: ModelSource, lora: LoraRef, opts: { precision?: Precision; files?: File[] } = {}): TaskHandle<LoraReport> {
    const id = this.newId('lora');
    const { pending, result } = this.enqueue<Extract<EngineEvent, { type: 'lora-report' }>>(
      { type: 'inspect-lora', id, model, lora, precision: opts.precision, files: opts.files },
      'lora-report',
      true,
    );
    return this.handle(
      pending,
      result.then((e) => e.report),
    );
  }

  generate(params: GenerateParams, opts: { files?: File[] } = {}): TaskHandle<ResultEvent> {
    const id = this.newId('gen');
    const { pending, result } = this.enqueue<ResultEvent>({ type: 'generate', id, params, files: opts.files }, 'result', true);
    return this.handle(pending, result);
  }

  private handle<T>(pending: Pending, result: Promise<T>): TaskHandle<T> {
    return {
      id: pending.id,
      result,
      subscribe: (listener) => {
        pending.listeners.add(listener);
        return () => pending.listeners.delete(listener);
      },
      cancel: () => this.cancel(pending.id),
    };
  }

  /** Cancel a queued or running load/generate. Its promise rejects with code `cancelled`. */
  cancel(id: string): void {
    const p = this.pending.get(id);
    if (!p) return;
    const qi = this.queue.indexOf(p);
    if (qi >= 0) {
      this.queue.splice(qi, 1);
      this.pending.delete(id);
      p.reject(new EngineClientError('cancelled', 'Cancelled before it started.'));
      return;
    }
    if (p.cancelTimer) return;
    this.worker.postMessage({ type: 'cancel', id: this.newId('cancel'), target: id } satisfies EngineRequest);
    p.cancelTimer = setTimeout(() => {
      if (this.pending.get(id) !== p) return;
      // The engine did not stop (e.g. a long GPU call): drop this task by replacing the worker.
      this.pending.delete(id);
      if (this.active === p) this.active = null;
      p.reject(new EngineClientError('cancelled', 'Cancelled (the engine was restarted to stop it).'));
      this.restart('cancelled', 'The engine was restarted to stop a task that did not answer cancel.');
    }, this.opts.cancelTimeoutMs ?? 8000);
  }

  /** Cancel everything queued or running. */
  cancelAll(): void {
    for (const p of [...this.queue]) this.cancel(p.id);
    if (this.active) this.cancel(this.active.id);
  }

  dispose(): void {
    if (this.disposed) return;
    const all = [...this.pending.values()];
    this.pending.clear();
    this.queue.length = 0;
    this.active = null;
    for (const p of all) {
      if (p.cancelTimer) clearTimeout(p.cancelTimer);
      p.reject(new EngineClientError('cancelled', 'The engine client was closed.'));
    }
    this.disposed = true;
    this.worker.terminate();
  }
}

/** The browser's engine worker (Vite bundles workers/engine.worker.ts as a module worker). */
export function createEngineWorker(): WorkerLike {
  return new Worker(new URL('../workers/engine.worker.ts', import.meta.url), { type: 'module', name: 'koala-engine' });
}
