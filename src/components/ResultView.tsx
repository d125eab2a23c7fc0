import { forwardRef, useState } from 'react';
import type { GalleryItem } from '../gallery';
import { imageFileName } from '../format';
import { useObjectUrl } from '../hooks/useObjectUrl';

/** The stage: live preview canvas while generating, the full-size result afterwards. */
export const Stage = forwardRef<HTMLCanvasElement, { showPreview: boolean; item: GalleryItem | null; placeholder: string }>(function Stage(
  { showPreview, item, placeholder },
  canvasRef,
) {
  const url = useObjectUrl(item?.png);
  const [actual, setActual] = useState(false);
  return (
    <div className="stage">
      <canvas ref={canvasRef} className="preview" hidden={!showPreview} aria-label="Live preview" role="img" />
      {!showPreview && item && url && (
        <figure className={`result${actual ? ' actual' : ''}${item.width <= 256 ? ' small-image' : ''}`}>
          <button
            type="button"
            className="zoom"
            onClick={() => setActual((a) => !a)}
            aria-pressed={actual}
            aria-label={actual ? 'Fit image to the view' : 'Show image at actual size'}
          >
            <img src={url} width={item.width} height={item.height} alt={`Generated: ${item.params.prompt}`} />
          </button>
        </figure>
      )}
      {!showPreview && !item && <p className="placeholder">{placeholder}</p>}
    </div>
  );
});

export function ResultActions({ item, onShare }: { item: GalleryItem; onShare: () => void }) {
  const url = useObjectUrl(item.png);
  return (
    <div className="result-actions">
      {url && (
        <a className="button primary" href={url} download={imageFileName(item.params.prompt, item.seed)}>
          Download
        </a>
      )}
      <button type="button" onClick={onShare}>
        Copy settings link
      </button>
      <span className="muted">
        {item.width}×{item.height} · seed {item.seed}
        {item.seconds !== undefined ? ` · ${item.seconds.toFixed(1)} s` : ''}
      </span>
    </div>
  );
}
