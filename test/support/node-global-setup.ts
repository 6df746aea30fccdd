/**
 * The node project's global setup: finds the system programs some tests drive (see
 * system-programs.ts) and hands them over. A missing one skips its tests with one line, printed
 * at the end of the run, under the results; under CI it fails the run.
 */
import type { TestProject } from 'vitest/node';
import { describeSkip, findSystemPrograms } from './system-programs';

export default async function setup(project: TestProject) {
  const { programs, skips } = await findSystemPrograms();
  if (skips.length > 0 && process.env.CI) {
    throw new Error(`CI is set, so every test must run:\n${skips.map(describeSkip).join('\n')}`);
  }
  project.provide('systemPrograms', programs);
  return () => {
    for (const skip of skips) process.stdout.write(`${describeSkip(skip)}\n`);
  };
}
