/**
 * Words for each status and the create progression, as every page shows them. Imports no
 * configuration, so the Node tests of the <cloud-desktop> element (which carries its own
 * copy: it loads on other sites' pages with no server-rendered model) can hold it to these.
 */
import type { DesktopStatus } from '../schemas/desktop';

export const STATUS_TEXT: Record<DesktopStatus, string> = {
  PENDING: 'Queued',
  PROVISIONING: 'Creating the machine',
  STARTING: 'Starting',
  WAITING_FOR_IP: 'Waiting for the network',
  CONFIGURING: 'Setting up remote access',
  RUNNING: 'Running',
  STOPPING: 'Stopping',
  STOPPED: 'Stopped',
  FAILED: 'Failed',
  DELETED: 'Terminated',
};

export const CREATE_STEPS: DesktopStatus[] = ['PENDING', 'PROVISIONING', 'STARTING', 'WAITING_FOR_IP', 'CONFIGURING', 'RUNNING'];
