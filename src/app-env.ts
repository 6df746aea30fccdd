import type { Principal } from './auth/jwt';
import type { Bindings, Config } from './env';

/** Hono's typed context: bindings plus what middleware puts in c.var. */
export type AppEnv = {
  Bindings: Bindings;
  Variables: {
    requestId: string;
    cfg: Config;
    principal: Principal;
    /** The request's audit record is written (src/middleware/audit.ts), so a refusal is not recorded twice. */
    audited?: boolean;
    /** The id a create must use: the one its Idempotency-Key holds (src/middleware/idempotency.ts). */
    idempotentDesktopId?: string;
    /** The desktop a create answered with, when it is not `idempotentDesktopId` (a warm pool's member). */
    createdDesktopId?: string;
    /** What a route says its audit record is about, where the path does not (src/middleware/audit.ts). */
    auditTarget?: string;
    auditDetails?: Record<string, unknown>;
  };
};
