/**
 * What the CLI prints. With --json, stdout carries exactly one JSON document (the result,
 * or `{"error": …}`); everything for people (progress, prompts, hints) goes to stderr, so
 * `cdaas … --json | jq` always reads clean JSON.
 */
import type { WaitProgress } from '@cdaas/sdk';

export interface Output {
  json: boolean;
  /** The command's result: JSON with --json, else the human form. */
  result(value: unknown, human: () => string): void;
  /** A line for people, on stderr. */
  note(line: string): void;
  /** A live progress display on stderr while waiting; `done()` ends it. */
  progress(label: string): { update(p: WaitProgress): void; done(): void };
}

export function createOutput(opts: { json: boolean; progress: boolean }): Output {
  const err = process.stderr;
  return {
    json: opts.json,
    result(value, human) {
      process.stdout.write(opts.json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
    },
    note(line) {
      err.write(`${line}\n`);
    },
    progress(label) {
      if (!opts.progress) return { update() {}, done() {} };
      // On a terminal one line is redrawn with a spinner; elsewhere (CI logs) a line per change.
      const tty = Boolean(err.isTTY);
      const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
      const started = Date.now();
      let line = `${label}: waiting`;
      let frame = 0;
      const draw = () => {
        const seconds = Math.round((Date.now() - started) / 1000);
        err.write(`\r\x1b[K${frames[frame++ % frames.length]} ${line} (${seconds}s)`);
      };
      const timer = tty ? setInterval(draw, 120) : undefined;
      let lastPrinted = '';
      return {
        update(p) {
          line = `${label}: ${p.status}${p.message ? ` - ${p.message}` : ''}`;
          if (tty) draw();
          else if (line !== lastPrinted) {
            err.write(`${line}\n`);
            lastPrinted = line;
          }
        },
        done() {
          if (timer) clearInterval(timer);
          if (tty) err.write('\r\x1b[K');
        },
      };
    },
  };
}

/** A plain text table: a header row and aligned columns. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [fmt(header), ...rows.map(fmt)].join('\n');
}
