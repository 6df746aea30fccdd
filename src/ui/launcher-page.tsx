/**
 * The launcher: the user's desktops (live: status, progress, time elapsed, idle warnings,
 * the desktop view) and the templates they may launch. Server-rendered from the API; the
 * script keeps the cards current from the live status stream and clones the <template>
 * elements below for new cards and warnings, so all markup is written here once.
 */
import type { FC } from 'hono/jsx';
import type { Session } from '../auth/session-token';
import type { Desktop, DesktopStatus, Plan } from '../schemas/desktop';
import type { Template } from '../schemas/template';
import { actionsFor, planText, tone } from './desktop-model';
import { CREATE_STEPS, STATUS_TEXT } from './status-text';
import { Alert, Layout } from './layout';
import type { CardAction, UiModel } from './model-types';

export const ACTION_LABEL: Record<CardAction, string> = {
  open: 'Open',
  'open-tab': 'Open in new tab',
  start: 'Start',
  stop: 'Stop',
  terminate: 'Terminate',
};
const ACTION_CLASS: Record<CardAction, string> = {
  open: 'button',
  'open-tab': 'button-quiet',
  start: 'button',
  stop: 'button-quiet',
  terminate: 'button-danger',
};

function gpuText(t: Template): string {
  if (!t.gpu || t.gpuSlots === 0) return 'No';
  return t.gpuSlots >= 8 ? 'Yes, a whole GPU' : `Yes, a shared GPU (${t.gpuSlots} of 8 slots)`;
}

interface CardData {
  id: string;
  name: string;
  status: DesktopStatus;
  plan: Plan;
  templateName: string;
  statusMessage: string | null;
  errorMessage: string | null;
  stopReason: string | null;
  /** When the work in progress began (time elapsed counts from it). */
  since: string | null;
}

function cardData(d: Desktop, templates: ReadonlyMap<string, Template>): CardData {
  const busyCreating = CREATE_STEPS.includes(d.status) && d.status !== 'RUNNING' && d.vmId === null;
  return {
    id: d.id,
    name: d.name,
    status: d.status,
    plan: d.plan,
    templateName: (d.templateId && templates.get(d.templateId)?.name) || (d.templateId ?? 'Default VM'),
    statusMessage: d.statusMessage,
    errorMessage: d.errorMessage,
    stopReason: d.stopReason,
    since: busyCreating ? d.createdAt : d.updatedAt,
  };
}

const PLACEHOLDER: CardData = {
  id: '',
  name: '',
  status: 'PENDING',
  plan: 'BASIC',
  templateName: '',
  statusMessage: null,
  errorMessage: null,
  stopReason: null,
  since: null,
};

export const DesktopCard: FC<{ d: CardData }> = ({ d }) => {
  const actions = actionsFor(d.status);
  const step = CREATE_STEPS.indexOf(d.status);
  const busy = d.status !== 'RUNNING' && d.status !== 'STOPPED' && d.status !== 'FAILED' && d.status !== 'DELETED';
  const headingId = `desktop-${d.id}-name`;
  return (
    <li class="desktop card" data-desktop-id={d.id} data-status={d.status} data-since={d.since ?? undefined} aria-labelledby={headingId}>
      <div class="desktop-head">
        <h3 id={headingId} data-field="name" tabindex={-1}>
          {d.name}
        </h3>
        <span class="badge" data-field="status" data-tone={tone(d.status)}>
          {STATUS_TEXT[d.status]}
        </span>
      </div>
      <p class="meta">
        <span data-field="template">{d.templateName}</span> · <span data-field="plan">{planText(d.plan)}</span>
      </p>
      <div class="progress-block" data-field="progress" hidden={!busy}>
        <p class="elapsed">
          <span data-field="step">{step >= 0 ? `Step ${step + 1} of ${CREATE_STEPS.length}` : STATUS_TEXT[d.status]}</span>
          {' · '}
          <span data-field="elapsed">0:00</span> elapsed
        </p>
        <progress data-field="bar" max={CREATE_STEPS.length - 1} value={step >= 0 ? step : undefined} aria-label="Progress" />
        <ol class="steps" aria-label="Steps">
          {CREATE_STEPS.map((s, i) => (
            <li
              data-step={s}
              data-state={i < step ? 'done' : i === step ? 'current' : 'todo'}
              aria-current={i === step ? 'step' : undefined}
            >
              {STATUS_TEXT[s]}
            </li>
          ))}
        </ol>
      </div>
      <p class="ready" data-field="ready" hidden />
      <p class="message" data-field="message" hidden={!d.statusMessage || !busy}>
        {d.statusMessage}
      </p>
      <p class="problem" data-field="error" hidden={!d.errorMessage}>
        <strong>What went wrong: </strong>
        <span data-field="error-text">{d.errorMessage}</span>
      </p>
      <p class="stop-reason" data-field="stop-reason" hidden={d.status !== 'STOPPED' || !d.stopReason}>
        {d.stopReason}
      </p>
      <div class="actions">
        {(Object.keys(ACTION_LABEL) as CardAction[]).map((a) => (
          <button
            type="button"
            class={ACTION_CLASS[a]}
            data-action={a}
            data-label={ACTION_LABEL[a]}
            aria-label={`${ACTION_LABEL[a]} ${d.name}`}
            hidden={!actions.includes(a)}
          >
            {ACTION_LABEL[a]}
          </button>
        ))}
        <a class="button-quiet" data-field="share" href={`/desktops/${d.id}/share`} aria-label={`Share ${d.name}`}>
          Share
        </a>
        <a class="button-quiet" data-field="snapshots" href={`/desktops/${d.id}/snapshots`} aria-label={`Snapshots of ${d.name}`}>
          Snapshots
        </a>
      </div>
    </li>
  );
};

const TemplateCard: FC<{ t: Template }> = ({ t }) => (
  <li class="card template" aria-labelledby={`template-${t.id}`}>
    <h3 id={`template-${t.id}`}>{t.name}</h3>
    <dl class="facts">
      <div>
        <dt>System</dt>
        <dd>{t.os}</dd>
      </div>
      <div>
        <dt>GPU</dt>
        <dd>{gpuText(t)}</dd>
      </div>
      <div>
        <dt>Plan</dt>
        <dd>{planText(t.defaultPlan)}</dd>
      </div>
    </dl>
    {t.description ? <p class="description">{t.description}</p> : null}
    <button
      type="button"
      class="button"
      data-action="launch"
      data-template-id={t.id}
      data-template-name={t.name}
      aria-label={`Launch ${t.name}`}
    >
      Launch
    </button>
  </li>
);

const WarningTemplate: FC = () => (
  <template id="warning-template">
    <div class="notice notice-warning warning" role="alert" data-warning-for="">
      <p class="notice-title">
        <span data-field="name" /> will <span data-field="verb">stop</span> in <span data-field="countdown">0:00</span>
      </p>
      <p data-field="why" />
      <button type="button" class="button" data-action="keepalive">
        I’m still here
      </button>
    </div>
  </template>
);

const Viewer: FC = () => (
  <section id="viewer" class="viewer" aria-labelledby="viewer-title" hidden>
    <div class="viewer-bar">
      <h2 id="viewer-title" tabindex={-1}>
        Desktop view
      </h2>
      <div class="viewer-actions">
        <button type="button" class="button-quiet" data-action="fullscreen">
          Full screen
        </button>
        <button type="button" class="button-quiet" data-action="viewer-tab">
          Open in new tab
        </button>
        <button type="button" class="button-quiet" data-action="close-viewer">
          Close desktop view
        </button>
      </div>
    </div>
    <div class="frame-box" id="frame-box">
      {/* The frame reaches Guacamole (another origin) through the connect page: the permissions name every origin. */}
      <iframe id="desktop-frame" title="Remote desktop" allow="clipboard-read *; clipboard-write *; fullscreen *" />
    </div>
  </section>
);

export interface LauncherProps {
  session: Session;
  model: UiModel;
  templates: Template[] | string;
  desktops: Desktop[] | string;
}

export const LauncherMain: FC<Omit<LauncherProps, 'session' | 'model'>> = ({ templates, desktops }) => {
  const byId = new Map(typeof templates === 'string' ? [] : templates.map((t) => [t.id, t] as const));
  return (
    <>
      <h1>Your cloud desktops</h1>
      <div id="warnings" class="warnings" />
      <Viewer />
      <section aria-labelledby="desktops-title" class="section">
        <h2 id="desktops-title">Your desktops</h2>
        {typeof desktops === 'string' ? (
          <Alert tone="error" title="Your desktops could not be loaded">
            {desktops}
          </Alert>
        ) : (
          <>
            <p class="empty" data-empty="" hidden={desktops.length > 0}>
              You have no desktops. Launch one below.
            </p>
            <ul id="desktop-list" class="desktop-list">
              {desktops.map((d) => (
                <DesktopCard d={cardData(d, byId)} />
              ))}
            </ul>
          </>
        )}
        <template id="desktop-template">
          <DesktopCard d={PLACEHOLDER} />
        </template>
      </section>
      <section aria-labelledby="launch-title" class="section">
        <h2 id="launch-title">Launch a desktop</h2>
        {typeof templates === 'string' ? (
          <Alert tone="error" title="Templates could not be loaded">
            {templates}
          </Alert>
        ) : templates.length === 0 ? (
          <p class="empty">No templates are available to you yet. Ask an administrator to add one.</p>
        ) : (
          <ul class="cards">
            {templates.map((t) => (
              <TemplateCard t={t} />
            ))}
          </ul>
        )}
      </section>
      <WarningTemplate />
    </>
  );
};

export const LauncherPage: FC<LauncherProps> = ({ session, model, templates, desktops }) => (
  <Layout title="Desktops" session={session} section="desktops" model={model}>
    <LauncherMain templates={templates} desktops={desktops} />
  </Layout>
);
