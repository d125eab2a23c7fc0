/**
 * AUTOMATIC1111 prompt attention syntax, as diffusers' community `lpw_stable_diffusion_xl` parses it:
 *
 *   (text)        weight × 1.1          ((text))  × 1.21, and so on
 *   (text:1.5)    weight × 1.5          [text]    weight ÷ 1.1
 *   \( \) \[ \]   literal brackets      \\        a literal backslash
 *   BREAK         ends the current 75-token chunk (see long-prompt.ts)
 *
 * Unclosed brackets apply to the end of the prompt; closing brackets with nothing open are kept as
 * text; runs of equal weight are merged. The result is a list of (text, weight) fragments.
 */

export interface PromptFragment {
  text: string;
  weight: number;
  /** A BREAK keyword between fragments (text is empty). */
  isBreak?: boolean;
}

export class PromptSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PromptSyntaxError';
  }
}

// One token of the syntax per match: escapes, brackets, ":weight)" closers, runs of plain text, a lone colon.
const ATTENTION = /\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:([+-]?[.\d]+)\)|\)|]|[^\\()[\]:]+|:/g;
const BREAK = /\s*\bBREAK\b\s*/s;

const ROUND = 1.1;
const SQUARE = 1 / 1.1;

/** True when the text uses weighting brackets, escapes or BREAK (anything that changes the plain reading). */
export function hasPromptSyntax(text: string): boolean {
  return /[()[\]\\]/.test(text) || BREAK.test(text);
}

/** Splits a prompt into weighted fragments (lpw_stable_diffusion_xl's `parse_prompt_attention`). */
export function parsePromptAttention(text: string): PromptFragment[] {
  const res: PromptFragment[] = [];
  const round: number[] = [];
  const square: number[] = [];
  const multiply = (from: number, m: number) => {
    for (let p = from; p < res.length; p++) res[p]!.weight *= m;
  };
  for (const m of text.matchAll(ATTENTION)) {
    const t = m[0];
    const w = m[1];
    if (t.startsWith('\\')) res.push({ text: t.slice(1), weight: 1 });
    else if (t === '(') round.push(res.length);
    else if (t === '[') square.push(res.length);
    else if (w !== undefined && round.length > 0) {
      const v = Number(w);
      if (!Number.isFinite(v)) throw new PromptSyntaxError(`Prompt weight "${w}" in "${t}" is not a number`);
      multiply(round.pop()!, v);
    } else if (t === ')' && round.length > 0) multiply(round.pop()!, ROUND);
    else if (t === ']' && square.length > 0) multiply(square.pop()!, SQUARE);
    else {
      t.split(BREAK).forEach((part, i) => {
        if (i > 0) res.push({ text: '', weight: -1, isBreak: true });
        res.push({ text: part, weight: 1 });
      });
    }
  }
  for (const p of round) multiply(p, ROUND);
  for (const p of square) multiply(p, SQUARE);
  if (res.length === 0) res.push({ text: '', weight: 1 });
  // Merge runs of identical weights (a BREAK never merges: its weight stays -1 and its neighbours keep theirs).
  for (let i = 0; i + 1 < res.length; ) {
    const a = res[i]!;
    const b = res[i + 1]!;
    if (!a.isBreak && !b.isBreak && a.weight === b.weight) {
      a.text += b.text;
      res.splice(i + 1, 1);
    } else i++;
  }
  return res;
}
