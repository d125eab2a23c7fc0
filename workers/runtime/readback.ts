/**
 * Counts every GPU→CPU transfer of a generation (the engine reports `readbacks` in GenerationStats).
 * All reads of GPU tensors go through {@link ReadbackCounter.read}; WebGPU session outputs that ORT hands
 * back on the CPU are noted by EngineSession.run.
 */
import type { OrtTensor } from './ort';

export interface ReadbackRecord {
  what: string;
  bytes: number;
}

export class ReadbackCounter {
  private records: ReadbackRecord[] = [];

  /** Number of GPU→CPU transfers so far. */
  get count(): number {
    return this.records.length;
  }

  /** Bytes moved GPU→CPU so far. */
  get bytes(): number {
    return this.records.reduce((s, r) => s + r.bytes, 0);
  }

  /** What was read, in order. */
  get log(): readonly ReadbackRecord[] {
    return this.records;
  }

  /** Records a transfer done elsewhere. */
  note(what: string, bytes: number): void {
    this.records.push({ what, bytes });
  }

  /**
   * The tensor's data on the CPU. A GPU tensor is downloaded (and counted); a CPU tensor is returned
   * as is, uncounted. `release` disposes a GPU tensor after the read.
   */
  async read<T extends OrtTensor['data'] = Float32Array>(tensor: OrtTensor, what: string, opts: { release?: boolean } = {}): Promise<T> {
    if (tensor.location === 'cpu' || tensor.location === 'cpu-pinned') return tensor.data as T;
    const data = (await tensor.getData(opts.release ?? false)) as T;
    this.note(what, (data as ArrayBufferView).byteLength ?? 0);
    return data;
  }

  reset(): void {
    this.records = [];
  }
}
