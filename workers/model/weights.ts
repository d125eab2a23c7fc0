/** A set of safetensors files (one, or the shards of a sharded checkpoint) seen as one name -> tensor map. */
import { readSafetensorsHeader, type ByteSource, type SafetensorsFile, type TensorInfo } from './safetensors';

export interface WeightEntry {
  file: SafetensorsFile;
  info: TensorInfo;
}

export class WeightIndex {
  private readonly map = new Map<string, WeightEntry>();

  constructor(readonly files: SafetensorsFile[]) {
    for (const file of files) {
      for (const info of file.tensors.values()) {
        const prev = this.map.get(info.name);
        if (prev) throw new Error(`tensor "${info.name}" is in both ${prev.file.source.name} and ${file.source.name}`);
        this.map.set(info.name, { file, info });
      }
    }
  }

  /** Reads and validates every file's header (never the tensor data). */
  static async open(sources: ByteSource[]): Promise<WeightIndex> {
    return new WeightIndex(await Promise.all(sources.map(readSafetensorsHeader)));
  }

  /**
   * This index with the tensors of `over` replacing (or adding) entries of the same name (LoRA-fused
   * weights). The files of the result are this index's files plus `over`.
   */
  overlay(over: SafetensorsFile): WeightIndex {
    const w = new WeightIndex([]);
    (w as { files: SafetensorsFile[] }).files = [...this.files, over];
    for (const [k, v] of this.map) w.map.set(k, v);
    for (const info of over.tensors.values()) w.map.set(info.name, { file: over, info });
    return w;
  }

  get(name: string): WeightEntry | undefined {
    return this.map.get(name);
  }

  has(name: string): boolean {
    return this.map.has(name);
  }

  names(): string[] {
    return [...this.map.keys()];
  }

  /** File names for error messages, e.g. "model.safetensors" or "a.safetensors + b.safetensors". */
  describe(): string {
    return this.files.map((f) => f.source.name).join(' + ') || '(no weight files)';
  }
}
