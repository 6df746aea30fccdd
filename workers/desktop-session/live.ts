/**
 * The desktop's live stream (`GET …/live`): viewers on hibernatable WebSockets, sent the
 * desktop at once (and any warning in force), then every message the desktop broadcasts.
 */
import { type DecideRules, timerState } from '../../src/desktop/decide';
import type { LiveMessage, SessionState } from '../../src/desktop/session-state';
import { warningsInForce } from '../../src/desktop/timers';

const LIVE_TAG = 'live';

/** Accepts a viewer's WebSocket and sends it the current state. */
export function acceptViewer(ctx: DurableObjectState, s: SessionState, timers: DecideRules['timers']): Response {
  const pair = new WebSocketPair();
  ctx.acceptWebSocket(pair[1], [LIVE_TAG]);
  pair[1].send(JSON.stringify({ type: 'snapshot', desktop: s.desktop } satisfies LiveMessage));
  for (const w of warningsInForce(timerState(s), Date.now(), timers)) {
    const at = new Date(w.at).toISOString();
    pair[1].send(JSON.stringify({ type: 'warning', warning: w.kind, at, desktop: s.desktop } satisfies LiveMessage));
  }
  return new Response(null, { status: 101, webSocket: pair[0] });
}

/** Sends `messages`, in order, to every viewer. */
export function sendToViewers(ctx: DurableObjectState, messages: LiveMessage[]): void {
  const texts = messages.map((m) => JSON.stringify(m));
  for (const ws of ctx.getWebSockets(LIVE_TAG)) {
    try {
      for (const text of texts) ws.send(text);
    } catch {
      // A closing socket; the runtime removes it.
    }
  }
}
