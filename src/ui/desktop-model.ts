/**
 * Desktops as the dashboard shows them: words for each status, the create progression,
 * and the buttons a status offers, read from the state machine's own table
 * (src/desktop/transitions.ts) so the page never offers what the API refuses.
 */
import { allowedActions, isInProgress } from '../desktop/transitions';
import type { Config } from '../env';
import { DESKTOP_STATUSES, type DesktopStatus, PLANS, type Plan } from '../schemas/desktop';
import { memory } from './format';
import type { CardAction, UiModel } from './model-types';
import { CREATE_STEPS, STATUS_TEXT } from './status-text';

export const planText = (plan: Plan) =>
  `${plan.charAt(0)}${plan.slice(1).toLowerCase()} · ${PLANS[plan].cpuCores} vCPU, ${memory(PLANS[plan].memoryMb)}`;

/** Badge colour of a status (the words carry the meaning; colour only repeats it). */
export function tone(status: DesktopStatus): 'ok' | 'bad' | 'idle' | 'busy' {
  if (status === 'RUNNING') return 'ok';
  if (status === 'FAILED') return 'bad';
  if (status === 'STOPPED' || status === 'DELETED') return 'idle';
  return 'busy';
}

export function actionsFor(status: DesktopStatus): CardAction[] {
  const allowed = allowedActions(status);
  const out: CardAction[] = [];
  if (status === 'RUNNING') out.push('open', 'open-tab');
  if (allowed.includes('start')) out.push('start');
  if (allowed.includes('stop')) out.push('stop');
  if (allowed.includes('delete')) out.push('terminate');
  return out;
}

export function uiModel(cfg: Config): UiModel {
  return {
    statusText: STATUS_TEXT,
    planText: Object.fromEntries((Object.keys(PLANS) as Plan[]).map((p) => [p, planText(p)])) as Record<Plan, string>,
    tones: Object.fromEntries(DESKTOP_STATUSES.map((s) => [s, tone(s)])) as Record<DesktopStatus, string>,
    steps: CREATE_STEPS,
    actions: Object.fromEntries(DESKTOP_STATUSES.map((s) => [s, actionsFor(s)])) as Record<DesktopStatus, CardAction[]>,
    busy: DESKTOP_STATUSES.filter(isInProgress),
    warningLeadMs: cfg.WARNING_LEAD_MINUTES * 60_000,
  };
}
