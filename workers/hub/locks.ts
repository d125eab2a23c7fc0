/**
 * One downloader per model: Web Locks (`navigator.locks`) across tabs and workers of an origin;
 * an in-process lock manager where Web Locks do not exist (Node, old browsers) or in tests.
 */
import { cancelled } from './http';
import type { LockManagerLike } from './types';

/** Exclusive named locks within one JS realm, with the Web Locks `request` signature. */
export class InProcessLocks implements LockManagerLike {
  private tails = new Map<string, Promise<void>>();

  async request<T>(name: string, options: { mode?: 'exclusive' | 'shared'; signal?: AbortSignal }, callback: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(name, tail);
    try {
      await waitOrAbort(prev, options.signal);
      return await callback();
    } finally {
      release();
      if (this.tails.get(name) === tail) this.tails.delete(name);
    }
  }
}

function waitOrAbort(p: Promise<void>, signal?: AbortSignal): Promise<void> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(cancelled('Waiting for another tab'));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(cancelled('Waiting for another tab'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (e) => reject(e),
    );
  });
}

const processLocks = new InProcessLocks();

/** `navigator.locks` when the platform has it, else a process-wide in-process lock manager. */
export function defaultLocks(): LockManagerLike {
  const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
  return nav?.locks ?? processLocks;
}
