import { useCallback, useEffect, useId, useRef, useState, type CSSProperties, type KeyboardEvent, type PointerEvent, type ReactNode } from 'react';

/** Painted pixels: this colour at full alpha on the canvas; the canvas itself is shown semi-transparent. */
const PAINT: [number, number, number] = [0, 150, 255];
const PAINT_CSS = `rgb(${PAINT.join(' ')})`;

export interface MaskEditorProps {
  /** The input image's pixel size: the mask is painted and exported at this size. */
  width: number;
  height: number;
  /** The current mask (white = repaint), or null for none; loaded into the canvas when it changes from outside. */
  mask: Blob | null;
  /** A black/white PNG at width × height after each edit; null when nothing is painted. */
  onChange: (mask: Blob | null) => void;
  /** The image under the mask (an <img>), and the frame's class and style (its aspect ratio). */
  image: ReactNode;
  frameClass: string;
  frameStyle?: CSSProperties;
}

/** Brush sizes in input-image pixels: from 1 to a third of the longer side; default a tenth. */
export function brushRange(width: number, height: number): { min: number; max: number; initial: number } {
  const long = Math.max(width, height);
  const max = Math.max(8, Math.round(long / 3));
  return { min: 1, max, initial: Math.min(max, Math.max(2, Math.round(long / 10))) };
}

function ctxOf(c: HTMLCanvasElement | null): CanvasRenderingContext2D | null {
  return c?.getContext('2d', { willReadFrequently: true }) ?? null;
}

/** Pixels painted (alpha ≥ 128) as the mask's white; null when none is. */
async function exportMask(canvas: HTMLCanvasElement): Promise<Blob | null> {
  const ctx = ctxOf(canvas);
  if (!ctx) return null;
  const { width, height } = canvas;
  const src = ctx.getImageData(0, 0, width, height).data;
  const out = new ImageData(width, height);
  let any = false;
  for (let i = 0; i < src.length; i += 4) {
    const on = src[i + 3]! >= 128;
    if (on) any = true;
    const v = on ? 255 : 0;
    out.data[i] = out.data[i + 1] = out.data[i + 2] = v;
    out.data[i + 3] = 255;
  }
  if (!any) return null;
  const c = document.createElement('canvas');
  c.width = width;
  c.height = height;
  c.getContext('2d')!.putImageData(out, 0, 0);
  return new Promise<Blob | null>((res) => c.toBlob((b) => res(b), 'image/png'));
}

/** Draws `mask` (any image; white = repaint) onto the paint canvas, resized to it, binarized at half grey. */
async function importMask(canvas: HTMLCanvasElement, mask: Blob): Promise<boolean> {
  const ctx = ctxOf(canvas);
  if (!ctx) return false;
  let bmp: ImageBitmap;
  try {
    bmp = await createImageBitmap(mask);
  } catch {
    return false;
  }
  const { width, height } = canvas;
  const tmp = document.createElement('canvas');
  tmp.width = width;
  tmp.height = height;
  const t = tmp.getContext('2d', { willReadFrequently: true })!;
  t.fillStyle = '#000';
  t.fillRect(0, 0, width, height);
  t.drawImage(bmp, 0, 0, width, height);
  bmp.close();
  const src = t.getImageData(0, 0, width, height).data;
  const out = new ImageData(width, height);
  for (let i = 0; i < src.length; i += 4) {
    const lum = 0.299 * src[i]! + 0.587 * src[i + 1]! + 0.114 * src[i + 2]!;
    out.data[i] = PAINT[0];
    out.data[i + 1] = PAINT[1];
    out.data[i + 2] = PAINT[2];
    out.data[i + 3] = lum >= 127.5 ? 255 : 0;
  }
  ctx.putImageData(out, 0, 0);
  return true;
}

/**
 * A canvas over the input image: paint the area to repaint with the mouse, a pen or a finger (pointer events),
 * erase, clear, invert, or load a mask file. `[` / `]` change the brush size and `X` switches paint/erase when
 * the canvas has focus. The painted area shows semi-transparent; the export is black/white at the image's size.
 */
export function MaskEditor({ width, height, mask, onChange, image, frameClass, frameStyle }: MaskEditorProps) {
  const ids = { brush: useId(), hint: useId() };
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const fileRef = useRef<HTMLInputElement>(null);
  const range = brushRange(width, height);
  const [brush, setBrush] = useState(range.initial);
  const [erase, setErase] = useState(false);
  const [cursor, setCursor] = useState<{ x: number; y: number; d: number } | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const drawing = useRef<{ id: number; x: number; y: number } | null>(null);
  /** The Blob this editor emitted last: when `mask` is that one, the canvas already shows it. */
  const emitted = useRef<Blob | null | undefined>(undefined);
  const size = Math.min(range.max, Math.max(range.min, brush));

  // A new image size: the brush follows it.
  useEffect(() => {
    setBrush(brushRange(width, height).initial);
  }, [width, height]);

  // Load the mask from outside (a reload, a new image, "Load mask…").
  useEffect(() => {
    const c = canvasRef.current;
    if (!c || mask === emitted.current) return;
    emitted.current = mask;
    const ctx = ctxOf(c);
    ctx?.clearRect(0, 0, c.width, c.height);
    if (mask) void importMask(c, mask);
  }, [mask, width, height]);

  const emit = useCallback(async () => {
    const c = canvasRef.current;
    if (!c) return;
    const blob = await exportMask(c);
    emitted.current = blob;
    onChange(blob);
  }, [onChange]);

  const toImage = (e: PointerEvent<HTMLCanvasElement>) => {
    const r = e.currentTarget.getBoundingClientRect();
    return { x: ((e.clientX - r.left) / r.width) * width, y: ((e.clientY - r.top) / r.height) * height, scale: r.width / width };
  };

  const stroke = (from: { x: number; y: number }, to: { x: number; y: number }) => {
    const ctx = ctxOf(canvasRef.current);
    if (!ctx) return;
    ctx.save();
    ctx.globalCompositeOperation = erase ? 'destination-out' : 'source-over';
    ctx.strokeStyle = ctx.fillStyle = PAINT_CSS;
    ctx.lineWidth = size;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    if (from.x === to.x && from.y === to.y) {
      ctx.arc(to.x, to.y, size / 2, 0, Math.PI * 2);
      ctx.fill();
    } else {
      ctx.moveTo(from.x, from.y);
      ctx.lineTo(to.x, to.y);
      ctx.stroke();
    }
    ctx.restore();
  };

  const onPointerDown = (e: PointerEvent<HTMLCanvasElement>) => {
    if (e.button !== 0 && e.pointerType === 'mouse') return;
    e.preventDefault();
    e.currentTarget.focus();
    e.currentTarget.setPointerCapture(e.pointerId);
    const p = toImage(e);
    drawing.current = { id: e.pointerId, x: p.x, y: p.y };
    stroke(p, p);
  };
  const onPointerMove = (e: PointerEvent<HTMLCanvasElement>) => {
    const p = toImage(e);
    const r = e.currentTarget.getBoundingClientRect();
    setCursor({ x: e.clientX - r.left, y: e.clientY - r.top, d: size * p.scale });
    const d = drawing.current;
    if (!d || d.id !== e.pointerId) return;
    stroke(d, p);
    d.x = p.x;
    d.y = p.y;
  };
  const onPointerEnd = (e: PointerEvent<HTMLCanvasElement>) => {
    if (drawing.current?.id !== e.pointerId) return;
    drawing.current = null;
    void emit();
  };

  const clear = () => {
    const c = canvasRef.current;
    ctxOf(c)?.clearRect(0, 0, width, height);
    void emit();
  };
  const invert = () => {
    const ctx = ctxOf(canvasRef.current);
    if (!ctx) return;
    const img = ctx.getImageData(0, 0, width, height);
    const d = img.data;
    for (let i = 0; i < d.length; i += 4) {
      const on = d[i + 3]! >= 128;
      d[i] = PAINT[0];
      d[i + 1] = PAINT[1];
      d[i + 2] = PAINT[2];
      d[i + 3] = on ? 0 : 255;
    }
    ctx.putImageData(img, 0, 0);
    void emit();
  };
  const load = async (file: File) => {
    const c = canvasRef.current;
    if (!c) return;
    ctxOf(c)?.clearRect(0, 0, width, height);
    if (!(await importMask(c, file))) {
      setMessage(`${file.name} could not be read as an image; use a PNG, JPEG or WebP (white = repaint).`);
      return;
    }
    setMessage(null);
    void emit();
  };

  const onKey = (e: KeyboardEvent<HTMLCanvasElement>) => {
    const step = Math.max(1, Math.round(size / 8));
    if (e.key === '[') setBrush(Math.max(range.min, size - step));
    else if (e.key === ']') setBrush(Math.min(range.max, size + step));
    else if (e.key === 'x' || e.key === 'X') setErase((v) => !v);
    else return;
    e.preventDefault();
  };

  return (
    <>
      <div className={frameClass} style={frameStyle}>
        {image}
      <canvas
        ref={canvasRef}
        className={`mask-canvas${erase ? ' erasing' : ''}`}
        width={width}
        height={height}
        tabIndex={0}
        role="img"
        aria-label="Mask: paint the area to repaint"
        aria-describedby={ids.hint}
        onPointerDown={onPointerDown}
        onPointerMove={onPointerMove}
        onPointerUp={onPointerEnd}
        onPointerCancel={onPointerEnd}
        onPointerLeave={() => setCursor(null)}
        onKeyDown={onKey}
      />
      {cursor && (
        <span
          className="brush-cursor"
          aria-hidden="true"
          style={{ left: cursor.x, top: cursor.y, width: cursor.d, height: cursor.d }}
        />
      )}
      </div>
      <div className="mask-tools">
        <div className="segmented small-seg" role="group" aria-label="Brush">
          <button type="button" className="small" aria-pressed={!erase} onClick={() => setErase(false)}>
            Paint
          </button>
          <button type="button" className="small" aria-pressed={erase} onClick={() => setErase(true)}>
            Erase
          </button>
        </div>
        <div className="mask-brush">
          <label htmlFor={ids.brush} className="hint">
            Brush size
          </label>
          <input
            id={ids.brush}
            type="range"
            min={range.min}
            max={range.max}
            step={1}
            value={size}
            aria-valuetext={`${size} px`}
            onChange={(e) => setBrush(Number(e.target.value))}
          />
          <output htmlFor={ids.brush} className="value">
            {size} px
          </output>
        </div>
        <div className="mask-actions">
          <button type="button" className="small" onClick={clear}>
            Clear
          </button>
          <button type="button" className="small" onClick={invert}>
            Invert
          </button>
          <button type="button" className="small" onClick={() => fileRef.current?.click()}>
            Load mask…
          </button>
          <input
            ref={fileRef}
            type="file"
            accept="image/*"
            hidden
            aria-label="Mask file"
            onChange={(e) => {
              const f = e.target.files?.[0];
              e.target.value = '';
              if (f) void load(f);
            }}
          />
        </div>
        <p id={ids.hint} className="hint">
          Paint over what to repaint; the rest is kept. [ and ] change the brush size, X switches paint/erase.
        </p>
        {message && (
          <p className="warning" role="alert">
            {message}
          </p>
        )}
      </div>
    </>
  );
}
