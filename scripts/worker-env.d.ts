/**
 * src/env.ts (imported by `npm run deploy:check` for the Worker's configuration schema)
 * names the generated Worker `Env` in its Bindings type. The Node programs never use that
 * type; they must not load worker-configuration.d.ts (its runtime types clash with Node's),
 * so here it is an empty object type.
 */
type Env = Record<never, never>;
