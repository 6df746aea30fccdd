/**
 * @cdaas/sdk: a typed client for the Cloud Desktop control plane API.
 *
 *   const cdaas = createClient({ baseUrl, token });
 *   const desktop = await cdaas.desktops.create({ name: 'Studio', plan: 'STANDARD' });
 *   await cdaas.desktops.waitUntil(desktop.id, 'RUNNING', { onProgress: (p) => console.log(p.status, p.message) });
 *   const { connectionUrl } = await cdaas.desktops.connect(desktop.id);
 */
export { type CdaasClient, type ClientOptions, type CreateOptions, type RequestOptions, createClient } from './client.ts';
export * from './errors.ts';
export type { WaitOptions, WaitProgress } from './live.ts';
export type { RetryOptions } from './retry.ts';
export type * from './types.ts';
export { type VerifyWebhookOptions, verifyWebhook } from './webhooks.ts';
export type { components, paths } from './generated/api.ts';
