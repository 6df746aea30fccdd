/**
 * The SDK is generated from the OpenAPI document the Worker serves: the copy it was
 * generated from (sdk/openapi.json, written in Node by sdk/scripts/generate.ts) must be
 * exactly what GET /api/v1/openapi.json answers. `npm run check` fails when that copy or
 * the generated types are stale against the routes.
 */
import { describe, expect, it } from 'vitest';
import generatedFrom from '../../sdk/openapi.json';
import { api } from './helpers';

describe('the OpenAPI document', () => {
  it('is served exactly as the SDK was generated from it', async () => {
    const served = await api('GET', '/api/v1/openapi.json');
    expect(served.status).toBe(200);
    expect(JSON.parse(served.text)).toEqual(generatedFrom);
  });

  it('documents Idempotency-Key on create, with the 409 and 422 it can cause', async () => {
    const create = (JSON.parse((await api('GET', '/api/v1/openapi.json')).text) as typeof generatedFrom).paths['/api/v1/desktops'].post;
    expect(create.parameters).toContainEqual(expect.objectContaining({ in: 'header', name: 'idempotency-key', required: false }));
    expect(Object.keys(create.responses)).toEqual(expect.arrayContaining(['202', '409', '422']));
  });
});
