import type { Principal } from './auth/jwt';
import type { Bindings, Config } from './env';

/** Hono's typed context: bindings plus what middleware puts in c.var. */
export type AppEnv = {
  Bindings: Bindings;
  /** `audited`: the request's audit record is written (src/middleware/audit.ts), so a refusal is not recorded twice. */
  Variables: { requestId: string; cfg: Config; principal: Principal; audited?: boolean };
};
