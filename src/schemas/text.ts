/**
 * Text that comes from outside (a bridge's messages, which may quote a pod's termination
 * message that the desktop's own user can write) is cleaned before it is stored: Postgres
 * text cannot hold NUL, and other control characters only garble logs and pages.
 */

/** Control characters except tab and line breaks. */
const CONTROLS = /[^\P{Cc}\t\n\r]/gu;

/** The text without control characters (tab and line breaks stay), with lone surrogates replaced. */
export function withoutControls(text: string): string {
  return text.toWellFormed().replace(CONTROLS, '');
}
