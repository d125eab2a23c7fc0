/**
 * WebGPU in Node for tests and benchmarks: the npm `webgpu` package (Dawn) over whatever Vulkan driver
 * the machine has (here Mesa 25 lavapipe, which offers `shader-f16`), set up exactly as REFERENCE.md
 * "WebGPU without a GPU" describes:
 *
 *   import { create, globals } from 'webgpu'; Object.assign(globalThis, globals);
 *   globalThis.navigator = { gpu: create([]) }
 *
 * plus one shim: onnxruntime-web calls `queue.writeBuffer(buffer, offset, sab, byteOffset, size)` with its
 * wasm memory (a SharedArrayBuffer), which Dawn-for-Node rejects. Every device an adapter hands out gets
 * a `queue.writeBuffer` that copies such ranges into a plain Uint8Array first. The shim is installed by
 * wrapping `adapter.requestDevice`, on every adapter `navigator.gpu.requestAdapter()` returns, so it also
 * covers the adapter onnxruntime-web requests on its own.
 *
 * Must run BEFORE onnxruntime-web is imported (ORT reads `navigator.gpu` when its WebGPU backend starts).
 *
 * Tests use `webgpuSuite()`: a missing adapter FAILS the suite with the command that installs one, so the
 * fp16 WebGPU path really runs on every commit; only an explicit `SKIP_WEBGPU=1` skips it (and the test
 * summary says so: test/skip-webgpu-summary.ts).
 */
import v8 from 'node:v8';
import { create, globals } from 'webgpu';
import { installNodeLogTap } from '../workers/runtime/ort-log.node.js';
import { webgpuSkipRequested } from './webgpu-node-env';

export interface NodeWebGpu {
  gpu: GPU;
  /** null when Dawn found no usable adapter (then `reason` says why). */
  adapter: GPUAdapter | null;
  /** "vendor / architecture / device / description" of the adapter. */
  adapterName: string;
  shaderF16: boolean;
  reason?: string;
}

let setup: Promise<NodeWebGpu> | undefined;

/** Sets up WebGPU globals once per process and probes the default adapter. */
export function setupNodeWebGpu(): Promise<NodeWebGpu> {
  setup ??= doSetup();
  return setup;
}

function isShared(data: unknown): boolean {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  if (data instanceof SharedArrayBuffer) return true;
  return ArrayBuffer.isView(data) && data.buffer instanceof SharedArrayBuffer;
}

/** Wraps `device.queue.writeBuffer` so SharedArrayBuffer-backed data is copied to a plain array. */
export function shimWriteBuffer(device: GPUDevice): GPUDevice {
  const queue = device.queue as GPUQueue & { __sabShim?: boolean };
  if (queue.__sabShim) return device;
  const original = queue.writeBuffer.bind(queue);
  queue.writeBuffer = ((
    buffer: GPUBuffer,
    bufferOffset: number,
    data: BufferSource | SharedArrayBuffer,
    dataOffset?: number,
    size?: number,
  ): undefined => {
    if (!isShared(data)) {
      return original(buffer, bufferOffset, data as BufferSource, dataOffset, size);
    }
    // dataOffset/size count elements for typed arrays and bytes for (Shared)ArrayBuffers.
    const view = ArrayBuffer.isView(data) ? data : new Uint8Array(data as SharedArrayBuffer);
    const elementSize = 'BYTES_PER_ELEMENT' in view ? (view as Uint8Array).BYTES_PER_ELEMENT : 1;
    const elements = view.byteLength / elementSize;
    const startEl = dataOffset ?? 0;
    const countEl = size ?? elements - startEl;
    const bytes = new Uint8Array(view.buffer, view.byteOffset + startEl * elementSize, countEl * elementSize);
    return original(buffer, bufferOffset, bytes.slice());
  }) as GPUQueue['writeBuffer'];
  queue.__sabShim = true;
  return device;
}

/** Makes every device this adapter creates carry the writeBuffer shim. */
export function shimAdapter(adapter: GPUAdapter): GPUAdapter {
  const a = adapter as GPUAdapter & { __sabShim?: boolean };
  if (a.__sabShim) return adapter;
  const requestDevice = adapter.requestDevice.bind(adapter);
  a.requestDevice = async (descriptor?: GPUDeviceDescriptor) => shimWriteBuffer(await requestDevice(descriptor));
  a.__sabShim = true;
  return adapter;
}

async function doSetup(): Promise<NodeWebGpu> {
  // Node 20's V8 stalls ~30-200 s in its optimizing tier on onnxruntime-web's asyncify wasm during the first
  // WebGPU run; baseline (Liftoff) code runs the WebGPU EP just as well. Must precede ORT's wasm compile.
  // KOALA_WASM_TIERUP=1 keeps the default tiering (e.g. to time wasm-backend kernels).
  if (!process.env.KOALA_WASM_TIERUP) v8.setFlagsFromString('--liftoff-only');
  // ORT's wasm module logs with fs.writeSync in Node: let workers/runtime/session.ts read its placement report.
  installNodeLogTap();
  Object.assign(globalThis, globals);
  const gpu = create([]);
  const requestAdapter = gpu.requestAdapter.bind(gpu);
  gpu.requestAdapter = async (options?: GPURequestAdapterOptions) => {
    const adapter = await requestAdapter(options);
    return adapter ? shimAdapter(adapter) : adapter;
  };
  // Node 20 has no `navigator`; Node >= 21 has a read-only getter, hence defineProperty.
  Object.defineProperty(globalThis, 'navigator', {
    value: { gpu, userAgent: 'node', hardwareConcurrency: 2 },
    configurable: true,
    writable: true,
  });

  let adapter: GPUAdapter | null = null;
  let reason: string | undefined;
  try {
    adapter = await gpu.requestAdapter();
    if (!adapter)
      reason =
        'navigator.gpu.requestAdapter() returned null (no Vulkan driver? run `sudo bash scripts/system/install-debian.sh` for Mesa 25 lavapipe)';
  } catch (e) {
    reason = `navigator.gpu.requestAdapter() threw: ${(e as Error).message}`;
  }
  const info = adapter?.info;
  const adapterName = info ? [info.vendor, info.architecture, info.device, info.description].filter((s) => s).join(' / ') : '';
  const shaderF16 = !!adapter?.features.has('shader-f16');
  return { gpu, adapter, adapterName, shaderF16, reason };
}

/**
 * For test files: resolves the Node WebGPU setup and decides whether the WebGPU suites run.
 * `SKIP_WEBGPU=1` returns `{ skip: true }` (explicit opt-out; `describe.skipIf(skip)` skips the suite).
 * Otherwise a missing adapter (or one without `shader-f16` when `needF16`) throws: the test file fails with
 * the reason and the command that installs Mesa's lavapipe. Never a silent skip.
 */
export async function webgpuSuite(opts: { needF16?: boolean } = {}): Promise<{ skip: boolean; webgpu: NodeWebGpu }> {
  const webgpu = await setupNodeWebGpu();
  if (webgpuSkipRequested()) return { skip: true, webgpu };
  const needF16 = opts.needF16 ?? true;
  let problem = webgpu.reason;
  if (!problem && needF16 && !webgpu.shaderF16) {
    problem = `adapter "${webgpu.adapterName}" has no shader-f16 (Mesa >= 25 lavapipe has it: \`sudo bash scripts/system/install-debian.sh\`)`;
  }
  if (!problem) return { skip: false, webgpu };
  throw new Error(`WebGPU tests cannot run: ${problem}. To skip them explicitly: SKIP_WEBGPU=1.`);
}
