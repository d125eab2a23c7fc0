import type { GalleryItem } from '../gallery';
import { findModel, SCHEDULERS } from '../models';
import { useObjectUrl } from '../hooks/useObjectUrl';
import { loraTag } from '../lora-store';
import { modeLabel } from '../input-image';

export interface GalleryProps {
  items: GalleryItem[];
  selectedId: string | null;
  onSelect: (item: GalleryItem) => void;
  onReuse: (item: GalleryItem) => void;
  /** Make this image the input of image to image (or of the inpainting in progress). */
  onUseAsInput: (item: GalleryItem) => void;
  onDelete: (item: GalleryItem) => void;
}

export function Gallery(p: GalleryProps) {
  return (
    <section className="gallery" aria-label="Gallery">
      <h2>
        Gallery <span className="muted">({p.items.length}, kept in this browser)</span>
      </h2>
      {p.items.length === 0 ? (
        <p className="muted">Your images appear here and stay after a reload.</p>
      ) : (
        <ul>
          {p.items.map((item) => (
            <GalleryCard key={item.id} item={item} selected={item.id === p.selectedId} {...p} />
          ))}
        </ul>
      )}
    </section>
  );
}

function GalleryCard({ item, selected, onSelect, onReuse, onUseAsInput, onDelete }: GalleryProps & { item: GalleryItem; selected: boolean }) {
  const url = useObjectUrl(item.png);
  const mode = modeLabel(item.params);
  const sched = SCHEDULERS.find((s) => s.value === item.params.scheduler)?.label ?? item.params.scheduler;
  return (
    <li className={`card${selected ? ' selected' : ''}`} aria-label={`Image: ${item.params.prompt}`}>
      <button type="button" className="thumb" onClick={() => onSelect(item)} aria-label={`Show image, seed ${item.seed}`}>
        {url && <img src={url} alt="" width={item.width} height={item.height} loading="lazy" />}
      </button>
      <div className="meta">
        <p className="prompt" title={item.params.prompt}>
          {item.params.prompt || '(empty prompt)'}
        </p>
        <p className="muted small">
          {findModel(item.params.model.repo).label} · {item.params.steps} steps · CFG {item.params.guidance} · {sched} · seed {item.seed}
        </p>
        {(mode || item.params.decoder === 'taesd') && (
          <p className="muted small card-mode">{[mode, item.params.decoder === 'taesd' ? 'tiny decoder' : null].filter(Boolean).join(' · ')}</p>
        )}
        {item.params.loras && item.params.loras.length > 0 && (
          <p className="muted small lora-tags" title={item.params.loras.map((l) => `<lora:${loraTag(l)}>`).join(' ')}>
            LoRA {item.params.loras.map(loraTag).join(' · ')}
          </p>
        )}
        <div className="card-actions">
          <button type="button" className="small" onClick={() => onReuse(item)}>
            Reuse settings
          </button>
          <button type="button" className="small" onClick={() => onUseAsInput(item)} aria-label={`Use as input, seed ${item.seed}`}>
            Use as input
          </button>
          <button type="button" className="small danger" onClick={() => onDelete(item)} aria-label={`Delete image, seed ${item.seed}`}>
            Delete
          </button>
        </div>
      </div>
    </li>
  );
}
