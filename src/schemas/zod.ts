/**
 * The one zod import for shared schemas. Zod 4 copies methods onto each schema when it
 * is built, so the OpenAPI extension (`.openapi()`, used by the routes) must be applied
 * before any schema exists; importing zod through @hono/zod-openapi guarantees that,
 * whatever module happens to load first (a test, the bridge, the Worker).
 */
export { z } from '@hono/zod-openapi';
