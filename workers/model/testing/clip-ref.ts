/**
 * Float64 reference of the CLIP text transformer (tests only): used to show that the graph computes
 * exactly what the (e.g. fp16-rounded) weights it is given imply.
 */
export type Weights = (name: string) => Float32Array;

export interface ClipRefConfig { hidden_size: number; num_attention_heads: number; num_hidden_layers: number; hidden_act: string; layer_norm_eps?: number }

function erf(x: number): number {
  // W. J. Cody's rational approximations are overkill here: a 60-term series for |x| < 4, 1 beyond (error < 2e-8).
  const t = Math.abs(x);
  if (t >= 4) return Math.sign(x);
  let sum = t, term = t;
  for (let n = 1; n < 60; n++) { term *= (-t * t) / n; sum += term / (2 * n + 1); }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
}

/** Returns hidden_states_m2 and last_hidden_state [T, D] for one id sequence. */
export function clipTextRef(cfg: ClipRefConfig, w: Weights, ids: ArrayLike<number>): { m2: Float64Array; last: Float64Array } {
  const D = cfg.hidden_size, H = cfg.num_attention_heads, hd = D / H, T = ids.length, eps = cfg.layer_norm_eps ?? 1e-5;
  const act = cfg.hidden_act === 'quick_gelu' ? (x: number) => x / (1 + Math.exp(-1.702 * x)) : (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
  const ln = (x: Float64Array, p: string) => {
    const g = w(`${p}.weight`), b = w(`${p}.bias`), out = new Float64Array(x.length);
    for (let t = 0; t < T; t++) {
      let m = 0, v = 0;
      for (let i = 0; i < D; i++) m += x[t * D + i] / D;
      for (let i = 0; i < D; i++) v += (x[t * D + i] - m) ** 2 / D;
      for (let i = 0; i < D; i++) out[t * D + i] = ((x[t * D + i] - m) / Math.sqrt(v + eps)) * g[i] + b[i];
    }
    return out;
  };
  const lin = (x: Float64Array, p: string, inF: number) => {
    const W = w(`${p}.weight`), b = w(`${p}.bias`), outF = W.length / inF, rows = x.length / inF, out = new Float64Array(rows * outF);
    for (let r = 0; r < rows; r++) for (let o = 0; o < outF; o++) {
      let acc = b[o];
      for (let i = 0; i < inF; i++) acc += x[r * inF + i] * W[o * inF + i];
      out[r * outF + o] = acc;
    }
    return out;
  };
  const tok = w('text_model.embeddings.token_embedding.weight'), pos = w('text_model.embeddings.position_embedding.weight');
  let h = new Float64Array(T * D);
  for (let t = 0; t < T; t++) for (let i = 0; i < D; i++) h[t * D + i] = tok[ids[t] * D + i] + pos[t * D + i];
  let m2 = h;
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = `text_model.encoder.layers.${l}`;
    const x = ln(h, `${p}.layer_norm1`);
    const q = lin(x, `${p}.self_attn.q_proj`, D), k = lin(x, `${p}.self_attn.k_proj`, D), v = lin(x, `${p}.self_attn.v_proj`, D);
    const a = new Float64Array(T * D);
    for (let hh = 0; hh < H; hh++) for (let i = 0; i < T; i++) {
      const s = new Float64Array(i + 1);
      let mx = -Infinity, sum = 0;
      for (let j = 0; j <= i; j++) {
        let acc = 0;
        for (let e = 0; e < hd; e++) acc += q[i * D + hh * hd + e] * k[j * D + hh * hd + e];
        s[j] = acc / Math.sqrt(hd);
        mx = Math.max(mx, s[j]);
      }
      for (let j = 0; j <= i; j++) sum += (s[j] = Math.exp(s[j] - mx));
      for (let e = 0; e < hd; e++) {
        let acc = 0;
        for (let j = 0; j <= i; j++) acc += (s[j] / sum) * v[j * D + hh * hd + e];
        a[i * D + hh * hd + e] = acc;
      }
    }
    const o = lin(a, `${p}.self_attn.out_proj`, D);
    const h1 = h.map((val, i) => val + o[i]);
    const f1 = lin(ln(h1, `${p}.layer_norm2`), `${p}.mlp.fc1`, D).map(act);
    const f2 = lin(f1, `${p}.mlp.fc2`, f1.length / T);
    h = h1.map((val, i) => val + f2[i]);
    if (l === cfg.num_hidden_layers - 2) m2 = h;
  }
  return { m2, last: ln(h, 'text_model.final_layer_norm') };
}
