/**
 * The JDBC extension's password policy (guacamole-auth-jdbc PasswordPolicyService and UserService, configured in
 * guacamole.properties as `postgresql-user-password-*`): complexity and history on every password set by POST or
 * PUT, the minimum age for users changing a password without admin rights, and the maximum age, after which a
 * login is answered with INSUFFICIENT_CREDENTIALS asking for `new-password` / `confirm-new-password`.
 */
import { badRequest, GuacError } from './errors';

export interface PasswordPolicy {
  minLength: number;
  /** `…-prohibit-username` */
  prohibitUsername: boolean;
  /** `…-require-multiple-case` */
  multipleCase: boolean;
  /** `…-require-digit` */
  digit: boolean;
  /** `…-require-symbol` */
  symbol: boolean;
  /** `…-history-size`: how many earlier passwords may not be set again (0 = none). */
  historySize: number;
  /** `…-min-age` in days (0 = none); privileged users are exempt. */
  minAgeDays: number;
  /** `…-max-age` in days (0 = never expires). */
  maxAgeDays: number;
}

export const NO_POLICY: PasswordPolicy = {
  minLength: 0,
  prohibitUsername: false,
  multipleCase: false,
  digit: false,
  symbol: false,
  historySize: 0,
  minAgeDays: 0,
  maxAgeDays: 0,
};

/** What a security-minded site sets: 12+ characters, mixed case, digits, symbols, no reuse of the last 6, 90 days. */
export const STRICT_POLICY: PasswordPolicy = {
  minLength: 12,
  prohibitUsername: true,
  multipleCase: true,
  digit: true,
  symbol: true,
  historySize: 6,
  minAgeDays: 1,
  maxAgeDays: 90,
};

const DAY_MS = 86_400_000;

/** The password's record: its value now and the ones before it (newest first), with when it was set. */
export interface PasswordRecord {
  password: string | null;
  setAt: number;
  history: string[];
}

/** PasswordPolicyService#verifyPassword, in its order and with its texts (all PasswordPolicyException → 400). */
export function verifyPassword(policy: PasswordPolicy, username: string, password: string, history: string[]): void {
  if (password.length < policy.minLength) throw badRequest('Password does not meet minimum length requirements.');
  if (policy.prohibitUsername && password.toLowerCase().includes(username.toLowerCase()))
    throw badRequest('Password must not contain username.');
  if (policy.multipleCase && !(/\p{Ll}/u.test(password) && /\p{Lu}/u.test(password)))
    throw badRequest('Password must contain both uppercase and lowercase.');
  if (policy.digit && !/\p{Nd}/u.test(password)) throw badRequest('Passwords must contain at least one digit.');
  if (policy.symbol && !/[^\p{Ll}\p{Lu}\p{Nd}]/u.test(password))
    throw badRequest('Passwords must contain at least one non-alphanumeric character.');
  if (policy.historySize > 0 && history.slice(0, policy.historySize).includes(password))
    throw badRequest('Password matches a previously-used password.');
}

/** verifyPasswordAge: only for users changing a password without being privileged. */
export function verifyPasswordAge(policy: PasswordPolicy, record: PasswordRecord, now: number): void {
  if (policy.minAgeDays > 0 && Math.floor((now - record.setAt) / DAY_MS) < policy.minAgeDays)
    throw badRequest('Password was already recently changed.');
}

export function isPasswordExpired(policy: PasswordPolicy, record: PasswordRecord, now: number): boolean {
  return policy.maxAgeDays > 0 && Math.floor((now - record.setAt) / DAY_MS) >= policy.maxAgeDays;
}

/** recordPassword: the password being replaced joins the history (kept to historySize). */
export function recordPassword(policy: PasswordPolicy, record: PasswordRecord): void {
  if (policy.historySize <= 0 || record.password === null) return;
  record.history = [record.password, ...record.history].slice(0, policy.historySize);
}

/** UserService#resetExpiredPassword: the login asks for a new password (TranslatableGuacamoleInsufficientCredentialsException). */
export const passwordExpired = () =>
  new GuacError(403, 'INSUFFICIENT_CREDENTIALS', 'Password has expired', {
    expected: [
      { name: 'new-password', type: 'PASSWORD' },
      { name: 'confirm-new-password', type: 'PASSWORD' },
    ],
    translatable: { key: 'LOGIN.INFO_PASSWORD_EXPIRED', variables: {} },
  });
