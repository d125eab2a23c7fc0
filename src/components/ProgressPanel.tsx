import { useEffect, useState } from 'react';
import type { Phase, ProgressEvent } from '../../workers/protocol';
import { formatBytes, formatDuration, formatRate } from '../format';

export const PHASE_LABEL: Record<Phase, string> = {
  resolve: 'Checking the model',
  download: 'Downloading',
  build: 'Building graphs',
  compile: 'Compiling shaders',
  encode: 'Encoding the prompt',
  denoise: 'Generating',
  decode: 'Decoding the image',
  png: 'Saving PNG',
};

/** "Step 3/25 · 1.20 it/s · ETA 18 s", "1.2 GB of 3.5 GB · 25 MB/s · ETA 1 min 30 s", … */
export function progressText(p: ProgressEvent, sinceEvent = 0): string {
  const parts: string[] = [];
  if (p.phase === 'download') {
    parts.push(`${formatBytes(p.done)} of ${formatBytes(p.total)}`);
    if (p.rate) parts.push(formatRate(p.rate));
  } else if (p.phase === 'denoise') {
    parts.push(`Step ${p.done}/${p.total}`);
    if (p.image !== undefined) parts.push(`image ${p.image + 1}`);
    if (p.rate) parts.push(`${p.rate.toFixed(2)} it/s`);
  } else if (p.total > 0) {
    parts.push(`${p.done}/${p.total}`);
  }
  if (p.eta !== undefined && Number.isFinite(p.eta)) parts.push(`ETA ${formatDuration(p.eta)}`);
  else parts.push(`${formatDuration(p.elapsed + sinceEvent)} elapsed`);
  return parts.join(' · ');
}

const MAX_FILES = 5;

/** Seconds since `progress` last changed, ticking once a second (long phases send few events). */
function useSinceEvent(progress: ProgressEvent | null): number {
  const [received, setReceived] = useState(() => performance.now());
  const [now, setNow] = useState(() => performance.now());
  useEffect(() => {
    const t = performance.now();
    setReceived(t);
    setNow(t);
    if (!progress) return;
    const timer = setInterval(() => setNow(performance.now()), 1000);
    return () => clearInterval(timer);
  }, [progress]);
  return Math.max(0, (now - received) / 1000);
}

export function ProgressPanel({ progress, queued }: { progress: ProgressEvent | null; queued: number | null }) {
  const sinceEvent = useSinceEvent(progress);
  if (queued !== null && !progress) {
    return (
      <div className="progress" role="status">
        <p className="phase">Waiting for the previous task ({queued} ahead)…</p>
      </div>
    );
  }
  if (!progress) {
    return (
      <div className="progress">
        <p className="phase">Starting…</p>
        <progress aria-label="Progress" />
      </div>
    );
  }
  const label = PHASE_LABEL[progress.phase] ?? progress.phase;
  const text = progressText(progress, sinceEvent);
  const max = Math.max(1, progress.total);
  const now = Math.min(progress.done, max);
  const all = progress.phase === 'download' ? (progress.files ?? []) : [];
  // Files being fetched first, then the waiting ones; finished files only counted.
  const finished = all.filter((f) => f.bytesTotal > 0 && f.bytesDone >= f.bytesTotal).length;
  const open = all
    .filter((f) => !(f.bytesTotal > 0 && f.bytesDone >= f.bytesTotal))
    .sort((a, b) => Number(b.bytesDone > 0) - Number(a.bytesDone > 0));
  const files = open.slice(0, MAX_FILES);
  const hidden = open.length - files.length;
  return (
    <div className="progress">
      <p className="phase">
        <strong>{label}</strong> {progress.message !== label && <span className="muted">{progress.message}</span>}
      </p>
      <progress aria-label={label} aria-valuenow={now} aria-valuemin={0} aria-valuemax={max} aria-valuetext={text} value={now} max={max} />
      <p className="progress-text" aria-live="polite">
        {text}
      </p>
      {all.length > 0 && (
        <p className="muted small">
          {finished} of {all.length} files done{hidden > 0 ? ` · ${hidden} more waiting` : ''}
        </p>
      )}
      {files.length > 0 && (
        <ul className="files">
          {files.map((f) => (
            <li key={f.path}>
              <span className="path">{f.path}</span>
              <progress
                aria-label={f.path}
                value={f.bytesDone}
                max={Math.max(1, f.bytesTotal)}
                aria-valuenow={f.bytesDone}
                aria-valuemax={f.bytesTotal}
              />
              <span className="muted">
                {formatBytes(f.bytesDone)} / {formatBytes(f.bytesTotal)}
              </span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
