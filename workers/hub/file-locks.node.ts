/**
 * Web-Locks-shaped exclusive locks across Node processes (two CLI runs sharing a cache folder):
 * a lock is a file created with O_EXCL holding the owner's pid; a lock whose owner died is taken over.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { cancelled, sleep } from './http';
import { InProcessLocks } from './locks';
import type { LockManagerLike } from './types';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class FileLocks implements LockManagerLike {
  private local = new InProcessLocks();
  constructor(
    readonly dir: string,
    private readonly pollMs = 200,
  ) {}

  request<T>(name: string, options: { mode?: 'exclusive' | 'shared'; signal?: AbortSignal }, callback: () => Promise<T>): Promise<T> {
    return this.local.request(name, options, async () => {
      await mkdir(this.dir, { recursive: true });
      const path = join(this.dir, `${createHash('sha1').update(name).digest('hex')}.lock`);
      for (;;) {
        if (options.signal?.aborted) throw cancelled('Waiting for another process');
        try {
          const fh = await open(path, 'wx');
          await fh.writeFile(String(process.pid));
          await fh.close();
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
          const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
          if (owner && !alive(owner)) {
            await rm(path, { force: true });
            continue;
          }
          await sleep(this.pollMs, options.signal);
        }
      }
      try {
        return await callback();
      } finally {
        await rm(path, { force: true });
      }
    });
  }
}
