import type { CachedModel } from '../../workers/protocol';
import { formatBytes } from '../format';

/** Models the engine keeps in this browser's storage, with a way to free the space. */
export function CacheList({ models, onDelete }: { models: CachedModel[] | null; onDelete: (m: CachedModel) => void }) {
  return (
    <section className="cache" aria-label="Downloaded models">
      <h2 className="small">Downloaded models</h2>
      {models === null ? (
        <p className="hint">Not available.</p>
      ) : models.length === 0 ? (
        <p className="hint">None yet: the first Generate downloads the chosen model.</p>
      ) : (
        <ul>
          {models.map((m) => (
            <li key={`${m.hubUrl}|${m.repo}|${m.commit}|${m.variant ?? ''}`}>
              <span className="repo" title={`${m.hubUrl} @ ${m.commit}`}>
                {m.repo}
                {m.variant ? ` (${m.variant})` : ''}
              </span>
              <span className="muted small">
                {formatBytes(m.bytes)}
                {m.complete ? '' : ' · partial'}
              </span>
              <button type="button" className="small danger" onClick={() => onDelete(m)} aria-label={`Delete downloaded ${m.repo}`}>
                Delete
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
