/**
 * What the server tells the page's script about desktops (the `ui-model` JSON block): the
 * script holds no status table of its own, so the state machine stays the only source of
 * which actions each status allows. Types only: the client build imports this file too.
 */
import type { DesktopStatus, Plan } from '../schemas/desktop';

export type CardAction = 'open' | 'open-tab' | 'start' | 'stop' | 'terminate';

export interface UiModel {
  statusText: Record<DesktopStatus, string>;
  /** Badge tone per status: ok, bad, idle, busy. */
  tones: Record<DesktopStatus, string>;
  /** `Standard · 4 vCPU, 4 GB` */
  planText: Record<Plan, string>;
  /** The create progression, in order: the step list and the progress bar follow it. */
  steps: DesktopStatus[];
  actions: Record<DesktopStatus, CardAction[]>;
  /** Statuses with work in progress (time elapsed counts, the progress bar shows). */
  busy: DesktopStatus[];
  /** WARNING_LEAD_MINUTES in ms: an idle warning is due this long before idleStopAt (or half the timeout, when shorter). */
  warningLeadMs: number;
}
