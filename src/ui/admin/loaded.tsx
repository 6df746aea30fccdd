/** Each part of an admin page loads on its own: one the API refused shows the API's words, the rest still shows. */
import type { FC } from 'hono/jsx';
import { Alert } from '../layout';

/** Data or, when the API refused, its message. */
export type Loaded<T> = T | { problem: string };

export const failed = <T,>(v: Loaded<T>): v is { problem: string } => typeof v === 'object' && v !== null && 'problem' in v;

export const Problem: FC<{ what: string; v: { problem: string } }> = ({ what, v }) => (
  <Alert tone="error" title={`${what} could not be loaded`}>
    {v.problem}
  </Alert>
);
