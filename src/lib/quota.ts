/** One active (not DELETED) desktop per user unless an admin set another limit (PRD 3.1 "check existing desktop"). */
export const DEFAULT_MAX_DESKTOPS = 1;
