/**
 * Node adapter for ort-log.ts: onnxruntime-web's wasm module prints with `fs.writeSync(1|2, line)` in
 * Node (not through `console`), so route those writes through {@link emitOrtLog}. Idempotent; only lines
 * written while a listener is active are looked at.
 */
import fs from 'node:fs';
import { emitOrtLog, ortLogListened } from './ort-log';

const kPatched = Symbol.for('koala.ortLogTap');

export function installNodeLogTap(): void {
  const f = fs as typeof fs & { [kPatched]?: boolean };
  if (f[kPatched]) return;
  f[kPatched] = true;
  const writeSync = fs.writeSync;
  fs.writeSync = ((fd: number, data: unknown, ...rest: unknown[]) => {
    if ((fd === 1 || fd === 2) && typeof data === 'string' && ortLogListened() && emitOrtLog(data)) return Buffer.byteLength(data);
    return (writeSync as (...a: unknown[]) => number)(fd, data, ...rest);
  }) as typeof fs.writeSync;
}
