import { describe, expect, it } from 'vitest';
import { parseGenerateArgs, UsageError } from './generate-args';

const base = ['--model', 'dir', '--prompt', 'a cat'];

describe('parseGenerateArgs', () => {
  it('keeps an absent negative prompt distinct from an empty one', () => {
    expect(parseGenerateArgs(base).negativePrompts).toBeUndefined();
    expect(parseGenerateArgs([...base, '--negative-prompt', '']).negativePrompts).toEqual(['']);
  });
  it('repeats one negative prompt for every prompt and rejects a count mismatch', () => {
    const o = parseGenerateArgs(['--model', 'd', '--prompt', 'a', '--prompt', 'b', '--negative-prompt', 'n']);
    expect(o.prompts).toEqual(['a', 'b']);
    expect(o.negativePrompts).toEqual(['n', 'n']);
    expect(() =>
      parseGenerateArgs(['--model', 'd', '--prompt', 'a', '--prompt', 'b', '--prompt', 'c', '--negative-prompt', 'x', '--negative-prompt', 'y']),
    ).toThrow(/once per --prompt \(3\)/);
  });
  it('parses sizes and micro-conditioning pairs', () => {
    const o = parseGenerateArgs([...base, '--width', '96', '--height', '64', '--original-size', '1024x768', '--crop', '0x16']);
    expect([o.width, o.height, o.originalSize, o.cropTopLeft]).toEqual([96, 64, [1024, 768], [0, 16]]);
  });
  it.each([
    [['--width', '100'], /multiple of 8/],
    [['--steps', '0'], /between 1 and 1000/],
    [['--steps', '1001'], /between 1 and 1000/],
    [['--steps', '2.5'], /integer/],
    [['--guidance', 'nan'], /finite/],
    [['--scheduler', 'heun'], /unknown --scheduler "heun"; choose one of euler, euler-a/],
    [['--timestep-spacing', 'odd'], /unknown --timestep-spacing/],
    [['--bogus', '1'], /Unknown option '--bogus'/],
    [['--seed=-1'], /between 0 and 4294967295/],
    [['--crop', '3'], /--crop must look like/],
    [['--precision', 'int8'], /fp32 or fp16/],
  ])('rejects %j', (extra, msg) => {
    expect(() => parseGenerateArgs([...base, ...extra])).toThrow(UsageError);
    expect(() => parseGenerateArgs([...base, ...extra])).toThrow(msg);
  });
  it('requires a model and a prompt', () => {
    expect(() => parseGenerateArgs(['--prompt', 'x'])).toThrow(/--model is required/);
    expect(() => parseGenerateArgs(['--model', 'x'])).toThrow(/--prompt is required/);
  });
});
