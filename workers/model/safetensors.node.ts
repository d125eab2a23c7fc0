/** Node adapter: a ByteSource over a file path that reads only the byte ranges asked for. */
import { openSync, readSync, closeSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import type { ByteSource } from './safetensors';

export function fileSource(path: string, name = basename(path)): ByteSource {
  const size = statSync(path).size;
  return {
    name,
    size,
    async read(offset, length) {
      const fd = openSync(path, 'r');
      try {
        const out = new Uint8Array(length);
        let got = 0;
        while (got < length) {
          const n = readSync(fd, out, got, length - got, offset + got);
          if (n === 0) break;
          got += n;
        }
        return got === length ? out : out.subarray(0, got);
      } finally {
        closeSync(fd);
      }
    },
  };
}
