/**
 * Turning failures into sentences a person can act on. A `fail` frame ends up in the
 * desktop's errorMessage, so it names the system, the action and the system's own
 * reason ("Proxmox refused to clone template 9000: VM is locked (clone)"), never a
 * stack trace or a raw HTTP dump.
 */
import { InfraError } from './drivers/types';

/** A failure whose message is already meant for people; tasks throw it for their own checks. */
export class TaskError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TaskError';
  }
}

/** Why a command was cancelled (the edge's `cancel` frame); the runner aborts with it. */
export class CancelledError extends Error {
  constructor(readonly reason: string) {
    super(`Cancelled: ${reason}`);
    this.name = 'CancelledError';
  }
}

const SYSTEM_NAMES: Record<InfraError['system'], string> = { proxmox: 'Proxmox', guacamole: 'Guacamole', kubernetes: 'Kubernetes' };

/**
 * `action` is what we were doing, in the infinitive ("clone template 9000"). The result
 * starts with the system when we know it, because that is where the operator looks.
 */
export function describeFailure(err: unknown, action: string): string {
  if (err instanceof TaskError || err instanceof CancelledError) return err.message;
  if (err instanceof InfraError) {
    const system = SYSTEM_NAMES[err.system];
    const reason = clean(systemReason(err));
    if (err.status === 0) return `${system} could not be reached to ${action}: ${reason}`;
    if (err.status === 401 || err.status === 403) return `${system} rejected the bridge's credentials while trying to ${action}: ${reason}`;
    return `${system} refused to ${action}: ${reason}`;
  }
  return `Unexpected error while trying to ${action}: ${clean(messageOf(err))}`;
}

/**
 * The system's own words from a driver error. Drivers prefix their messages with where
 * the call went ("Proxmox POST /nodes/pve1/qemu/9000/clone: 500 VM is locked (clone)",
 * "guacamole POST /connections → 400 BAD_REQUEST: …", "Proxmox task qmclone 9000 failed:
 * …"), which the log keeps in full; a status line only needs what the system said.
 */
export function systemReason(err: InfraError): string {
  return err.message.replace(DRIVER_PREFIX, '') || err.message;
}

const DRIVER_PREFIX =
  /^(?:proxmox|guacamole|kubernetes)(?: task \S+ \S* ?failed)?(?: (?:GET|POST|PUT|DELETE|PATCH|HEAD) \S+)?(?: → \d{3}(?: [A-Z_]+)?)?: (?:\d{3} )?/i;

/** A readable message for any thrown value, without an action to frame it. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return clean(err.message) || err.name;
  if (typeof err === 'string') return clean(err);
  return 'unknown error';
}

// Proxmox messages end in "\n" (a Perl `die`); multi-line texts are usually a summary followed by detail, and the
// summary is what belongs in a status line.
function clean(text: string): string {
  const first = text.trim().split('\n')[0] ?? '';
  return first.length > 400 ? `${first.slice(0, 397)}...` : first;
}
