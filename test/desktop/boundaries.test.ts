/**
 * The direction of imports: the API, the UI and the desktop's rules (src/) know nothing of
 * the Durable Objects and consumers (workers/) that run them; workers/index.ts, the Worker's
 * entry, puts the two together.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : /\.tsx?$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

describe('module boundaries', () => {
  it('has no import from src/ into workers/', () => {
    const offenders = sources(join(ROOT, 'src')).filter((f) => /from ['"](\.\.\/)+workers\//.test(readFileSync(f, 'utf8')));
    expect(offenders.map((f) => relative(ROOT, f))).toEqual([]);
  });

  it('keeps the desktop rules pure: no runtime, storage or network in src/desktop', () => {
    const impure = sources(join(ROOT, 'src/desktop')).filter((f) =>
      /cloudflare:|from ['"](\.\.\/)+(db|routes)\/|fetch\(|Date\.now\(|Math\.random\(/.test(readFileSync(f, 'utf8')),
    );
    expect(impure.map((f) => relative(ROOT, f))).toEqual([]);
  });
});
