/**
 * Progress with accumulated facts: once a step learns the vmid or the IP, every later
 * frame carries it, so the edge can record facts from whichever frame arrives (frames
 * sent while the link was down may be the only ones it gets).
 */
import type { DesktopFacts, Step } from '../../../src/schemas/bridge-protocol';
import type { TaskContext } from './context';

export interface Reporter {
  readonly facts: DesktopFacts;
  report(step: Step, message: string, learned?: DesktopFacts): void;
}

export function createReporter(ctx: TaskContext, initial: DesktopFacts = {}): Reporter {
  const facts: DesktopFacts = { ...initial };
  return {
    facts,
    report(step, message, learned) {
      Object.assign(facts, learned);
      ctx.progress(step, message, Object.keys(facts).length > 0 ? { ...facts } : undefined);
    },
  };
}
