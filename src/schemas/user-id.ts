/**
 * Our user ids: the `sub` of an API token or of a dashboard sign-in, and every userId the
 * API takes in a body, path or query. Identity providers use more than letters and digits
 * (Auth0's `auth0|5f3c…` and `google-oauth2|1234…`, ids with `+` or `=`), so any printable
 * ASCII without spaces is a user id, up to 255 characters (OIDC's own bound for `sub`).
 * One rule everywhere: a subject that may sign in can also list its own desktops.
 */
import { z } from './zod';

export const USER_ID_MAX = 255;
const PRINTABLE = /^[\x21-\x7E]+$/;

export const UserIdSchema = z
  .string()
  .min(1)
  .max(USER_ID_MAX)
  .regex(PRINTABLE, `a user id is 1–${USER_ID_MAX} printable ASCII characters without spaces`);

export const isUserId = (s: string): boolean => s.length >= 1 && s.length <= USER_ID_MAX && PRINTABLE.test(s);
