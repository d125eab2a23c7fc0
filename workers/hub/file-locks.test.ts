import { describe, expect, it } from 'vitest';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { FileLocks } from './file-locks.node.js';

describe('FileLocks', () => {
  it('serialises holders across instances (processes) and takes over a dead owner\'s lock', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'koala-locks-'));
    const a = new FileLocks(dir, 5);
    const b = new FileLocks(dir, 5); // a second instance stands for another process
    const order: string[] = [];
    await Promise.all([
      a.request('m', {}, async () => {
        order.push('a+');
        await new Promise((r) => setTimeout(r, 60));
        order.push('a-');
      }),
      new Promise((r) => setTimeout(r, 10)).then(() => b.request('m', {}, async () => void order.push('b'))),
    ]);
    expect(order).toEqual(['a+', 'a-', 'b']);
    expect(await readdir(dir)).toEqual([]);
    // a lock file left by a process that no longer exists
    await writeFile(join(dir, `${createHash('sha1').update('m').digest('hex')}.lock`), '999999999');
    expect(await b.request('m', {}, async () => 'taken over')).toBe('taken over');
    const ac = new AbortController();
    let acquired!: () => void;
    const holding = new Promise<void>((r) => (acquired = r));
    const held = a.request('m', {}, () => {
      acquired();
      return new Promise((r) => setTimeout(r, 100));
    });
    await holding; // a holds the lock before b asks (lock files are created asynchronously)
    const waiting = b.request('m', { signal: ac.signal }, async () => 'never');
    setTimeout(() => ac.abort(), 20);
    await expect(waiting).rejects.toThrow(/cancelled/);
    await held;
    await rm(dir, { recursive: true, force: true });
  });
});
