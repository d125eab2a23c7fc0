import { describe, expect, it } from 'vitest';
import { EngineError } from '../protocol';
import { classifyError, DeviceWatch, toEngineError } from './errors';
import { parsePlacement } from './ort-log';

describe('classifyError / toEngineError', () => {
  it.each([
    ['Device was lost: the GPU process crashed', 'device-lost'],
    ['GPUDeviceLostInfo { reason: "unknown" }', 'device-lost'],
    ['Buffer size (2147483648) exceeds the max buffer size limit (1073741824).', 'limits-too-low'],
    ['Binding size (268435456) of [Buffer] is larger than the maximum storage buffer binding size (134217728).', 'limits-too-low'],
    ['Failed to allocate memory for requested buffer of size 1610612736', 'out-of-memory'],
    ['RangeError: Array buffer allocation failed', 'out-of-memory'],
    ['WebAssembly.Memory(): could not allocate memory', 'out-of-memory'],
    ['Aborted(Cannot enlarge memory arrays to size 4294967296 bytes)', 'out-of-memory'],
    ['Non-zero status code returned while running Conv node', 'internal'],
  ])('%s -> %s', (msg, code) => {
    expect(classifyError(new Error(msg))).toBe(code);
    const e = toEngineError(new Error(msg), 'Running unet on webgpu');
    expect(e).toBeInstanceOf(EngineError);
    expect(e.code).toBe(code);
    expect(e.message.startsWith('Running unet on webgpu: ')).toBe(true);
    expect(e.message).toContain(msg);
  });
  it('keeps EngineErrors and maps AbortError to cancelled', () => {
    const orig = new EngineError('bad-input', 'x');
    expect(toEngineError(orig, 'ctx')).toBe(orig);
    const abort = Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
    expect(toEngineError(abort, 'Loading').code).toBe('cancelled');
  });
});

describe('DeviceWatch', () => {
  it('turns device loss and uncaptured OOM errors into typed errors', async () => {
    let lose!: (info: GPUDeviceLostInfo) => void;
    const listeners: ((ev: Event) => void)[] = [];
    const device = {
      lost: new Promise<GPUDeviceLostInfo>((r) => (lose = r)),
      addEventListener: (_: string, f: (ev: Event) => void) => listeners.push(f),
    } as unknown as GPUDevice;
    const w = new DeviceWatch(device);
    expect(() => w.check()).not.toThrow();
    listeners[0]({ error: { message: 'Out of memory while allocating buffer' } } as unknown as Event);
    expect(() => w.check()).toThrow(/out of memory|Out of memory/);
    expect(() => w.check()).not.toThrow();
    lose({ reason: 'unknown', message: 'TDR' } as GPUDeviceLostInfo);
    const err = await w.lost;
    expect(err.code).toBe('device-lost');
    expect(err.message).toContain('TDR');
    expect(() => w.check()).toThrow(/GPU device lost \(TDR\)/);
  });
});

describe('parsePlacement', () => {
  const pre = '2026-11-25 19:59:15.089980 [V:onnxruntime:, session_state.cc:1383 VerifyEachNodeIsAssignedToAnEp]';
  it('lists CPU nodes and counts per provider', () => {
    const p = parsePlacement([
      '2026-11-25 [I:onnxruntime:, inference_session.cc:2610 Initialize] Initializing session.',
      `${pre} Node placements`,
      `${pre}  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 2`,
      `${pre}   Det (d_node)`,
      `${pre}   Cast (pool/Cast)`,
      `${pre}  Node(s) placed on [WebGpuExecutionProvider]. Number of nodes: 3`,
      `${pre}   Softmax (y_node)`,
      `${pre}   Mul (z_node)`,
      `${pre}   MemcpyFromHost (Memcpy)`,
      '2026-11-25 [V:onnxruntime:, session_state.cc:1200 Something] else',
    ]);
    expect(p).toEqual({ seen: true, cpuNodes: ['Det (d_node)', 'Cast (pool/Cast)'], perProvider: { CPUExecutionProvider: 2, WebGpuExecutionProvider: 3 } });
  });
  it('all nodes on one provider; nothing seen without the report', () => {
    expect(parsePlacement([`${pre} Node placements`, `${pre}  All nodes placed on [WebGpuExecutionProvider]. Number of nodes: 812`])).toEqual({
      seen: true, cpuNodes: [], perProvider: { WebGpuExecutionProvider: 812 },
    });
    expect(parsePlacement(['nothing here']).seen).toBe(false);
  });
});
