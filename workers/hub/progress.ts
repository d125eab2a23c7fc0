/** Download progress: bytes per file and overall, speed over a sliding window, ETA. */
import type { ProgressEvent } from '../protocol';
import type { DownloadProgress, FileDownloadProgress, FileState } from './types';

const WINDOW_MS = 5000;

class RateMeter {
  private samples: Array<{ t: number; bytes: number }> = [];
  add(t: number, bytes: number): void {
    this.samples.push({ t, bytes });
    while (this.samples.length > 2 && t - this.samples[0].t > WINDOW_MS) this.samples.shift();
  }
  /** Bytes per second over the window (0 until two samples exist). */
  rate(now: number): number {
    if (this.samples.length < 2) return 0;
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const dt = Math.max(now, last.t) - first.t;
    return dt > 0 ? ((last.bytes - first.bytes) * 1000) / dt : 0;
  }
}

interface FileEntry {
  path: string;
  total: number;
  done: number;
  /** Bytes received over the network in this session (for speed). */
  received: number;
  state: FileState;
  meter: RateMeter;
}

export class ProgressTracker {
  private files = new Map<string, FileEntry>();
  private received = 0;
  private overall = new RateMeter();
  private readonly start = Date.now();
  private lastEmit = 0;

  constructor(
    private readonly emit: ((p: DownloadProgress) => void) | undefined,
    private readonly intervalMs = 100,
    private readonly now: () => number = Date.now,
  ) {}

  addFile(path: string, total: number, done: number, state: FileState): void {
    this.files.set(path, { path, total, done, received: 0, state, meter: new RateMeter() });
  }

  update(path: string, done: number, state: FileState): void {
    const f = this.files.get(path);
    if (!f) return;
    const t = this.now();
    if (done > f.done) {
      this.received += done - f.done;
      f.received += done - f.done;
    }
    f.done = done;
    f.state = state;
    f.meter.add(t, f.received);
    this.overall.add(t, this.received);
    const important = state !== 'downloading';
    if (important || t - this.lastEmit >= this.intervalMs) this.send('download', '');
  }

  snapshot(phase: DownloadProgress['phase'], message: string): DownloadProgress {
    const t = this.now();
    let done = 0;
    let total = 0;
    const files: FileDownloadProgress[] = [];
    for (const f of this.files.values()) {
      done += f.done;
      total += f.total;
      const rate = f.state === 'downloading' ? f.meter.rate(t) : 0;
      files.push({
        path: f.path,
        bytesDone: f.done,
        bytesTotal: f.total,
        rate,
        eta: rate > 0 ? (f.total - f.done) / rate : undefined,
        state: f.state,
      });
    }
    const rate = this.overall.rate(t);
    const active = files.filter((f) => f.state === 'downloading' || f.state === 'retrying' || f.state === 'verifying');
    return {
      phase,
      message:
        message ||
        (active.length ? `Downloading ${active.map((f) => f.path).join(', ')}` : `Downloaded ${done} of ${total} bytes`),
      bytesDone: done,
      bytesTotal: total,
      rate,
      eta: rate > 0 ? (total - done) / rate : undefined,
      elapsed: (t - this.start) / 1000,
      files,
    };
  }

  send(phase: DownloadProgress['phase'], message: string): void {
    if (!this.emit) return;
    this.lastEmit = this.now();
    this.emit(this.snapshot(phase, message));
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** A download progress snapshot as the protocol's ProgressEvent (for the engine worker). */
export function toProgressEvent(id: string, p: DownloadProgress): ProgressEvent {
  return {
    type: 'progress',
    id,
    phase: p.phase === 'resolve' ? 'resolve' : 'download',
    message: p.message,
    done: p.bytesDone,
    total: p.bytesTotal,
    elapsed: p.elapsed,
    rate: p.rate,
    eta: p.eta,
    files: p.files.map((f) => ({ path: f.path, bytesDone: f.bytesDone, bytesTotal: f.bytesTotal })),
  };
}
