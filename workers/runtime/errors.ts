/**
 * Maps what onnxruntime-web and WebGPU throw to the protocol's typed errors, with a message that tells
 * the user what to do.
 */
import { EngineError, type ErrorCode } from '../protocol';

const RULES: { code: ErrorCode; test: RegExp; advice: string }[] = [
  {
    code: 'device-lost',
    test: /device (was |is |has been )?lost|GPUDeviceLostInfo|device\.lost|DeviceLost|lost the (gpu )?device|context lost/i,
    advice: 'The GPU device was lost (driver reset, another tab took the GPU, or the machine slept). Reload the page to start a new GPU device.',
  },
  {
    code: 'limits-too-low',
    test: /max(imum)? ?(storage )?buffer ?binding ?size|maxStorageBufferBindingSize|maxBufferSize|exceeds the max(imum)? buffer size|larger than the max(imum)?|buffer size .* exceeds|binding size .* (exceeds|larger)|too large for (the )?(device|adapter)/i,
    advice: 'A tensor is larger than this GPU allows in one buffer. Choose a smaller image size.',
  },
  {
    code: 'out-of-memory',
    test: /out of memory|OutOfMemory|OOM|failed to allocate|allocation failed|bad_alloc|could not allocate memory|Cannot enlarge memory|Array buffer allocation failed|RangeError: .*(memory|Array buffer)|memory access out of bounds/i,
    advice: 'The model did not fit in memory. Close other tabs or programs, choose a smaller image size, or use a smaller model.',
  },
];

/** The protocol code for an error thrown by ORT / WebGPU (EngineErrors keep theirs). */
export function classifyError(e: unknown): ErrorCode {
  if (e instanceof EngineError) return e.code;
  if (isAbort(e)) return 'cancelled';
  const text = errorText(e);
  for (const r of RULES) if (r.test.test(text)) return r.code;
  return 'internal';
}

/** Wraps any error as an EngineError: `<context>: <advice> (<original message>)`. */
export function toEngineError(e: unknown, context: string): EngineError {
  if (e instanceof EngineError) return e;
  const code = classifyError(e);
  const text = errorText(e);
  if (code === 'cancelled') return new EngineError('cancelled', `${context}: cancelled`);
  const rule = RULES.find((r) => r.code === code);
  const message = rule ? `${context}: ${rule.advice} (${text})` : `${context}: ${text}`;
  const err = new EngineError(code, message);
  (err as Error & { cause?: unknown }).cause = e;
  return err;
}

function isAbort(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { name?: string }).name === 'AbortError';
}

function errorText(e: unknown): string {
  if (e instanceof Error) return e.message || String(e);
  if (typeof e === 'object' && e !== null && 'message' in e) return String((e as { message: unknown }).message);
  return String(e);
}

/**
 * Watches a GPUDevice: `lost` resolves (with an EngineError 'device-lost') when the device goes away,
 * and uncaptured validation / out-of-memory errors are recorded so the next run can report them.
 */
export class DeviceWatch {
  readonly lost: Promise<EngineError>;
  private lostError?: EngineError;
  private uncaptured: EngineError[] = [];

  constructor(readonly device: GPUDevice) {
    this.lost = device.lost.then((info) => {
      const why = info.reason === 'destroyed' ? 'the device was destroyed' : info.message || 'unknown reason';
      this.lostError = new EngineError('device-lost', `GPU device lost (${why}). Reload the page to start a new GPU device.`);
      return this.lostError;
    });
    const onError = (ev: Event) => {
      const error = (ev as GPUUncapturedErrorEvent).error;
      if (!error) return;
      const isOom = typeof GPUOutOfMemoryError !== 'undefined' && error instanceof GPUOutOfMemoryError;
      const code: ErrorCode = isOom ? 'out-of-memory' : classifyError(error);
      this.uncaptured.push(toEngineError(isOom ? new Error(`out of memory: ${error.message}`) : error, `GPU ${code === 'internal' ? 'error' : code}`));
    };
    if (typeof device.addEventListener === 'function') device.addEventListener('uncapturederror', onError);
  }

  /** Throws the first problem seen since the last check (device loss first). */
  check(): void {
    if (this.lostError) throw this.lostError;
    const first = this.uncaptured.shift();
    this.uncaptured = [];
    if (first) throw first;
  }
}
