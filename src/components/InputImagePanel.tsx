import { useId, useRef, useState, type CSSProperties, type DragEvent } from 'react';
import { useObjectUrl } from '../hooks/useObjectUrl';
import { fitNote, imageFileOf, type InputImage } from '../input-image';
import { LIMITS } from '../settings';
import { MaskEditor } from './MaskEditor';

export interface InputImagePanelProps {
  mode: 'img2img' | 'inpaint';
  input: InputImage | null;
  mask: Blob | null;
  strength: number;
  /** The output size chosen in the controls (the engine fits the input to it). */
  width: number;
  height: number;
  onInput: (blob: Blob, name: string) => void;
  onRemoveInput: () => void;
  onMask: (mask: Blob | null) => void;
  onStrength: (v: number) => void;
}

/**
 * The input image of image to image and inpainting: drop a file, paste one (Ctrl+V anywhere on the page, wired
 * in App), or choose one; the image is shown with its pixel size and how the engine will fit it; the strength
 * slider; in inpaint mode the mask editor over the image.
 */
export function InputImagePanel(p: InputImagePanelProps) {
  const ids = { strength: useId(), strengthHint: useId(), info: useId() };
  const fileRef = useRef<HTMLInputElement>(null);
  const [dragging, setDragging] = useState(false);
  const url = useObjectUrl(p.input?.blob);
  const w = p.input?.width;
  const h = p.input?.height;
  const note = fitNote(w, h, p.width, p.height);
  const strengthText = p.strength.toFixed(2);

  const hasFiles = (e: DragEvent) => Array.from(e.dataTransfer.types).includes('Files');
  const onDragOver = (e: DragEvent<HTMLElement>) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    if (!dragging) setDragging(true);
  };
  const onDragLeave = (e: DragEvent<HTMLElement>) => {
    if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setDragging(false);
  };
  const onDrop = (e: DragEvent<HTMLElement>) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    setDragging(false);
    const f = imageFileOf(e.dataTransfer, true);
    if (f) p.onInput(f, f.name || 'dropped image');
  };

  const ratio = w && h ? w / h : p.width / p.height;
  const frameStyle = { '--ratio': String(ratio) } as CSSProperties;
  const small = !!w && !!h && Math.max(w, h) < 256;
  const frameClass = `input-frame${small ? ' small-image' : ''}`;
  const img = url && <img src={url} alt={`Input image${w && h ? `, ${w}×${h}` : ''}`} draggable={false} />;

  return (
    <section
      className={`input-image${dragging ? ' dragging' : ''}`}
      aria-label="Input image"
      onDragOver={onDragOver}
      onDragLeave={onDragLeave}
      onDrop={onDrop}
    >
      {!p.input ? (
        <div className="input-drop">
          <p>
            <strong>Input image</strong>
          </p>
          <p className="hint">Drop an image here, paste one (Ctrl+V), or</p>
          <button type="button" onClick={() => fileRef.current?.click()}>
            Choose image…
          </button>
        </div>
      ) : (
        <>
          <div className="label-row">
            <span className="input-title">Input image</span>
            <span className="input-buttons">
              <button type="button" className="small" onClick={() => fileRef.current?.click()}>
                Replace…
              </button>
              <button type="button" className="small danger" onClick={p.onRemoveInput}>
                Remove
              </button>
            </span>
          </div>
          {!w || !h ? (
            <p className="warning" role="status" id={ids.info}>
              {p.input.name} cannot be shown as an image here; the engine will check it when you press Generate.
            </p>
          ) : p.mode === 'inpaint' ? (
            <MaskEditor
              width={w}
              height={h}
              mask={p.mask}
              onChange={p.onMask}
              image={img}
              frameClass={frameClass}
              frameStyle={frameStyle}
            />
          ) : (
            <div className={frameClass} style={frameStyle}>
              {img}
            </div>
          )}
          <p className="hint input-info" id={w && h ? ids.info : undefined} aria-live="polite">
            <span className="input-name" title={p.input.name}>
              {p.input.name}
            </span>
            {w && h ? ` · ${w}×${h} px` : null}
          </p>
          {note && <p className="hint input-note">{note}</p>}
          {p.mode === 'inpaint' && w && h && !p.mask && (
            <p className="warning" role="status">
              Paint the area to repaint (or load a mask) before you generate.
            </p>
          )}
        </>
      )}
      <input
        ref={fileRef}
        type="file"
        accept="image/*"
        hidden
        aria-label="Input image file"
        onChange={(e) => {
          const f = e.target.files?.[0];
          e.target.value = '';
          if (f) p.onInput(f, f.name);
        }}
      />
      <div className="field">
        <div className="label-row">
          <label htmlFor={ids.strength}>Strength</label>
          <output htmlFor={ids.strength} className="value">
            {strengthText}
          </output>
        </div>
        <input
          id={ids.strength}
          type="range"
          min={LIMITS.strength.min}
          max={LIMITS.strength.max}
          step={LIMITS.strength.step}
          value={p.strength}
          aria-valuetext={strengthText}
          aria-describedby={ids.strengthHint}
          onChange={(e) => p.onStrength(Number(e.target.value))}
        />
        <p id={ids.strengthHint} className="hint">
          0 keeps the image, 1 repaints it completely.
        </p>
      </div>
    </section>
  );
}
