/**
 * CLIP tokenizers for SDXL-family pipelines, matching diffusers' slow `CLIPTokenizer`
 * (transformers, ftfy not installed) token for token.
 *
 * What the slow tokenizer does, and where it happens here:
 * 1. Split the text on registered special tokens (bos, eos, unk, pad and any added token):
 *    `splitOnSpecialTokens` (TS). For SDXL's `tokenizer_2` the pad token is `!`, so every
 *    literal `!` becomes its own token (id 0) there, while `tokenizer` BPE-merges it.
 * 2. Each other chunk goes through transformers' `BasicTokenizer(strip_accents=False,
 *    do_split_on_punc=False)`: drop NUL, U+FFFD and category C* characters except tab/CR/LF,
 *    map whitespace (tab, CR, LF, Zs) to a space, put spaces around CJK ideographs,
 *    NFC-normalize, split on whitespace, lowercase, join with single spaces: `basicClean` (TS).
 * 3. CLIP's regex split, byte-level mapping and BPE with the `</w>` end-of-word suffix:
 *    @huggingface/tokenizers, with a tokenizer.json definition built from vocab.json + merges.txt.
 * 4. `[bos] + tokens + [eos]`, truncated to 77 (bos + 75 + eos) and padded with the pad id.
 */
import { Tokenizer } from '@huggingface/tokenizers';

/** The model's context length (CLIP position embeddings). */
export const MAX_LENGTH = 77;

/** CLIP's pre-tokenization pattern (open_clip / transformers `CLIPTokenizer.pat`). */
const CLIP_PATTERN =
  "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

const CLIP_REGEX = new RegExp(CLIP_PATTERN, 'gu');

/** The slow CLIPTokenizer only reads this many lines of merges.txt (header included). */
const MERGES_LINE_LIMIT = 49152 - 256 - 2 + 1;

/** The four tokenizer files of a diffusers repo's `tokenizer/` or `tokenizer_2/` folder. */
export interface ClipTokenizerFiles {
  /** vocab.json: text or parsed object. */
  vocab: string | Record<string, number>;
  /** merges.txt text. */
  merges: string;
  /** tokenizer_config.json: text or parsed object. */
  tokenizerConfig: string | Record<string, unknown>;
  /** special_tokens_map.json: text or parsed object (may be absent in some repos). */
  specialTokensMap?: string | Record<string, unknown>;
  /** Used in error messages, e.g. `tokenizer_2`. */
  name?: string;
}

export interface EncodedPrompt {
  /** Exactly 77 ids: bos, up to 75 tokens, eos, then pad ids. */
  ids: Int32Array;
  /** Tokens between bos and eos before truncation. */
  tokenCount: number;
  /** Tokens dropped by truncation (0 when the prompt fits). */
  truncated: number;
}

interface SpecialToken {
  content: string;
  lstrip: boolean;
  rstrip: boolean;
}

function parseJson<T>(value: string | T, what: string): T {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value) as T;
  } catch (e) {
    throw new Error(`${what} is not valid JSON: ${(e as Error).message}`);
  }
}

function tokenContent(value: unknown): SpecialToken | null {
  if (typeof value === 'string') return { content: value, lstrip: false, rstrip: false };
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    const v = value as { content: string; lstrip?: boolean; rstrip?: boolean };
    return { content: v.content, lstrip: !!v.lstrip, rstrip: !!v.rstrip };
  }
  return null;
}

const CJK_RANGES: ReadonlyArray<readonly [number, number]> = [
  [0x4e00, 0x9fff],
  [0x3400, 0x4dbf],
  [0x20000, 0x2a6df],
  [0x2a700, 0x2b73f],
  [0x2b740, 0x2b81f],
  [0x2b820, 0x2ceaf],
  [0xf900, 0xfaff],
  [0x2f800, 0x2fa1f],
];

function isCjk(cp: number): boolean {
  for (const [lo, hi] of CJK_RANGES) if (cp >= lo && cp <= hi) return true;
  return false;
}

const OTHER_CATEGORY = /^\p{C}$/u;
const SPACE_SEPARATOR = /^\p{Zs}$/u;

/**
 * transformers' BasicTokenizer(do_lower_case=True, strip_accents=False, do_split_on_punc=False)
 * followed by `" ".join(...)`, as CLIPTokenizer._tokenize does without ftfy.
 */
export function basicClean(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp === 0 || cp === 0xfffd) continue;
    const isTabLike = ch === '\t' || ch === '\n' || ch === '\r';
    if (!isTabLike && OTHER_CATEGORY.test(ch)) continue; // Cc, Cf, Cs, Co, Cn
    if (ch === ' ' || isTabLike || SPACE_SEPARATOR.test(ch)) {
      out += ' ';
    } else if (isCjk(cp)) {
      out += ` ${ch} `;
    } else {
      out += ch;
    }
  }
  const words = out.normalize('NFC').split(/\s+/u).filter((w) => w.length > 0);
  return words.map((w) => w.toLowerCase()).join(' ');
}

/** One CLIP tokenizer (`tokenizer/` or `tokenizer_2/` of an SDXL repo). */
export class ClipTokenizer {
  readonly name: string;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly maxLength: number;
  private readonly bpe: Tokenizer;
  private readonly special: SpecialToken[];
  private readonly specialIds: Map<string, number>;
  private readonly vocab: Record<string, number>;

  /**
   * @param shareBpeWith a tokenizer built from the same vocab.json and merges.txt (SDXL's two
   *   tokenizers ship identical ones): its BPE model is reused instead of built again.
   */
  constructor(files: ClipTokenizerFiles, shareBpeWith?: ClipTokenizer) {
    this.name = files.name ?? 'tokenizer';
    const vocab = parseJson<Record<string, number>>(files.vocab, `${this.name}/vocab.json`);
    const config = parseJson<Record<string, unknown>>(files.tokenizerConfig, `${this.name}/tokenizer_config.json`);
    const map = files.specialTokensMap
      ? parseJson<Record<string, unknown>>(files.specialTokensMap, `${this.name}/special_tokens_map.json`)
      : {};
    if (!vocab || typeof vocab !== 'object') throw new Error(`${this.name}/vocab.json: expected an object of token -> id`);
    this.vocab = vocab;

    // special_tokens_map.json wins over tokenizer_config.json; CLIPTokenizer's defaults otherwise
    const pick = (key: string, fallback: string): SpecialToken =>
      tokenContent(map[key]) ?? tokenContent(config[key]) ?? { content: fallback, lstrip: false, rstrip: false };
    const bos = pick('bos_token', '<|startoftext|>');
    const eos = pick('eos_token', '<|endoftext|>');
    const unk = pick('unk_token', '<|endoftext|>');
    const pad = pick('pad_token', '<|endoftext|>');
    const idOf = (t: SpecialToken, role: string): number => {
      const id = vocab[t.content];
      if (id === undefined) throw new Error(`${this.name}/vocab.json has no id for the ${role} "${t.content}"`);
      return id;
    };
    this.bosId = idOf(bos, 'bos_token');
    this.eosId = idOf(eos, 'eos_token');
    this.padId = idOf(pad, 'pad_token');
    idOf(unk, 'unk_token');
    const maxLen = config.model_max_length;
    this.maxLength = typeof maxLen === 'number' && maxLen > 2 && maxLen < 100000 ? maxLen : MAX_LENGTH;

    // Every registered added/special token splits the text (transformers' added-token trie).
    const special = new Map<string, SpecialToken>();
    for (const t of [bos, eos, unk, pad]) special.set(t.content, t);
    const decoder = config.added_tokens_decoder as Record<string, unknown> | undefined;
    this.specialIds = new Map();
    if (decoder && typeof decoder === 'object') {
      for (const [id, value] of Object.entries(decoder)) {
        const t = tokenContent(value);
        if (t) {
          special.set(t.content, t);
          this.specialIds.set(t.content, Number(id));
        }
      }
    }
    for (const t of special.values()) {
      if (!this.specialIds.has(t.content)) this.specialIds.set(t.content, idOf(t, 'special token'));
    }
    // Longest first so that a match is the longest one starting at a position.
    this.special = [...special.values()].sort((a, b) => b.content.length - a.content.length);

    if (shareBpeWith) {
      this.bpe = shareBpeWith.bpe;
      return;
    }
    const mergeLines = files.merges.split('\n');
    if (!mergeLines[0]?.startsWith('#version')) {
      throw new Error(`${this.name}/merges.txt: expected a "#version" header line, found "${mergeLines[0]?.slice(0, 40)}"`);
    }
    const merges = files.merges.trim().split('\n').slice(1, MERGES_LINE_LIMIT);
    this.bpe = new Tokenizer(
      {
        version: '1.0',
        truncation: null,
        padding: null,
        added_tokens: [],
        normalizer: null,
        pre_tokenizer: {
          type: 'Sequence',
          pretokenizers: [
            { type: 'Split', pattern: { Regex: CLIP_PATTERN }, behavior: 'Removed', invert: true },
            { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
          ],
        },
        post_processor: null,
        decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
        model: {
          type: 'BPE',
          dropout: null,
          unk_token: unk.content,
          continuing_subword_prefix: '',
          end_of_word_suffix: '</w>',
          fuse_unk: false,
          byte_fallback: false,
          vocab,
          merges,
        },
      },
      {},
    );
  }

  /** Split on special tokens; returns chunks, special ones flagged. */
  private splitOnSpecialTokens(text: string): Array<{ text: string; special: boolean }> {
    const parts: Array<{ text: string; special: boolean }> = [];
    let start = 0;
    let i = 0;
    while (i < text.length) {
      let hit: SpecialToken | null = null;
      for (const t of this.special) {
        if (text.startsWith(t.content, i)) {
          hit = t;
          break;
        }
      }
      if (!hit) {
        i++;
        continue;
      }
      let before = text.slice(start, i);
      if (hit.lstrip) before = before.trimEnd();
      if (before) parts.push({ text: before, special: false });
      parts.push({ text: hit.content, special: true });
      i += hit.content.length;
      if (hit.rstrip) while (i < text.length && /\s/u.test(text[i]!)) i++;
      start = i;
    }
    const rest = text.slice(start);
    if (rest) parts.push({ text: rest, special: false });
    return parts;
  }

  /** Token ids of the text, without bos/eos, padding or truncation. */
  tokenIds(text: string): number[] {
    const ids: number[] = [];
    for (const part of this.splitOnSpecialTokens(text)) {
      if (part.special) {
        ids.push(this.specialIds.get(part.text)!);
        continue;
      }
      const cleaned = basicClean(part.text);
      if (!cleaned) continue;
      if (!cleaned.includes('<|startoftext|>') && !cleaned.includes('<|endoftext|>')) {
        for (const id of this.bpe.encode(cleaned, { add_special_tokens: false }).ids) ids.push(id);
        continue;
      }
      // Text that lowercases to a marker (e.g. "<|EndOfText|>") is not split out as a special token,
      // but CLIP's regex matches it as one piece and the slow BPE's cache maps it to the marker's id.
      for (const m of cleaned.matchAll(CLIP_REGEX)) {
        const piece = m[0];
        const special = piece === '<|startoftext|>' || piece === '<|endoftext|>' ? this.vocab[piece] : undefined;
        if (special !== undefined) ids.push(special);
        else for (const id of this.bpe.encode(piece, { add_special_tokens: false }).ids) ids.push(id);
      }
    }
    return ids;
  }

  /** Token strings (BPE pieces with `</w>`), without bos/eos. */
  tokens(text: string): string[] {
    return this.tokenIds(text).map((id) => this.bpe.id_to_token(id) ?? `<${id}>`);
  }

  /** `tokenizer(text).input_ids`: bos + tokens + eos, untruncated. */
  encodeUntruncated(text: string): number[] {
    return [this.bosId, ...this.tokenIds(text), this.eosId];
  }

  /** `tokenizer(text, padding='max_length', max_length=77, truncation=True).input_ids`. */
  encode(text: string): EncodedPrompt {
    const tokens = this.tokenIds(text);
    const room = this.maxLength - 2;
    const kept = Math.min(tokens.length, room);
    const ids = new Int32Array(this.maxLength).fill(this.padId);
    ids[0] = this.bosId;
    for (let i = 0; i < kept; i++) ids[i + 1] = tokens[i]!;
    ids[kept + 1] = this.eosId;
    return { ids, tokenCount: tokens.length, truncated: tokens.length - kept };
  }

  /** Real tokens of the text (without start/end markers). */
  countTokens(text: string): number {
    return this.tokenIds(text).length;
  }

  /** Tokens the text encoder sees at most (77 minus bos and eos). */
  get limit(): number {
    return this.maxLength - 2;
  }

  /** Id of a vocabulary entry, or undefined. */
  idOf(token: string): number | undefined {
    return this.vocab[token];
  }
}

/** Both tokenizers of an SDXL-family pipeline, used together. */
export class SdxlTokenizers {
  constructor(
    readonly tokenizer: ClipTokenizer,
    readonly tokenizer2: ClipTokenizer,
  ) {}

  static fromFiles(files1: ClipTokenizerFiles, files2: ClipTokenizerFiles): SdxlTokenizers {
    const t1 = new ClipTokenizer({ name: 'tokenizer', ...files1 });
    const same =
      typeof files1.vocab === 'string' && files1.vocab === files2.vocab && files1.merges === files2.merges;
    return new SdxlTokenizers(t1, new ClipTokenizer({ name: 'tokenizer_2', ...files2 }, same ? t1 : undefined));
  }

  /** ids for text_encoder and text_encoder_2, and tokens truncation dropped (the larger of the two). */
  encode(text: string): { ids1: Int32Array; ids2: Int32Array; truncated: number; tokenCount: number } {
    const a = this.tokenizer.encode(text);
    const b = this.tokenizer2.encode(text);
    return {
      ids1: a.ids,
      ids2: b.ids,
      truncated: Math.max(a.truncated, b.truncated),
      tokenCount: Math.max(a.tokenCount, b.tokenCount),
    };
  }

  /** Live token counter for the page: real tokens (the larger count of the two tokenizers). */
  countTokens(text: string): number {
    return Math.max(this.tokenizer.countTokens(text), this.tokenizer2.countTokens(text));
  }

  get limit(): number {
    return Math.min(this.tokenizer.limit, this.tokenizer2.limit);
  }
}
