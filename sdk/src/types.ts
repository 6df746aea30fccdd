/** The API's records, as the generated types (./generated/api.ts) describe them, under friendly names. */
import type { components, paths } from './generated/api.ts';

type Schemas = components['schemas'];
/** The `data` of an operation's 200 answer. */
type Ok<Operation> = Operation extends { responses: { 200: { content: { 'application/json': { data: infer D } } } } } ? D : never;

export type Desktop = Schemas['Desktop'];
/** A desktop with whether its site's bridge is connected (GET /desktops/{id}). */
export type DesktopWithSite = Schemas['DesktopWithSite'];
export type DesktopStatus = Desktop['status'];
export type Plan = Desktop['plan'];
export type DesktopPage = Schemas['DesktopPage'];
export type CreateDesktopInput = Schemas['CreateDesktopRequest'];
export type Template = Schemas['Template'];
export type ConnectInfo = Ok<paths['/api/v1/desktops/{id}/connect']['get']>;
export type Snapshot = Schemas['DesktopSnapshot'];
export type SnapshotList = Schemas['DesktopSnapshotList'];
export type TakeSnapshotInput = Schemas['CreateSnapshotRequest'];
/** What taking or deleting a snapshot answers: the snapshot (its name, when the API chose it) and the desktop. */
export type SnapshotOperation = Schemas['SnapshotOperation'];
/** Scheduled snapshots: every `everyHours`, kept per `retention` (keepLast and/or keepDays). */
export type SnapshotSchedule = Schemas['SnapshotSchedule'];
/** A desktop's own setting: a schedule, or `{ off: true }`. */
export type SnapshotScheduleSetting = Schemas['DesktopSnapshotScheduleSetting'];
/** A desktop's own setting, its template's schedule, the one that applies, and when the cron next looks. */
export type SnapshotScheduleView = Schemas['SnapshotScheduleView'];
/** A warm pool (admins): ready desktops of one template at one site. */
export type Pool = Schemas['Pool'];
export type PoolInput = Schemas['PoolInput'];
/** A pool with its target and why, its members, hits, misses and claim times. */
export type PoolView = Schemas['PoolView'];
export type DesktopStatusInfo = Ok<paths['/api/v1/desktops/{id}/status']['get']>;
export type ListDesktopsQuery = NonNullable<paths['/api/v1/desktops']['get']['parameters']['query']>;

/** Every error code the API answers with (`error.code` of the envelope). */
export type ErrorCode = paths['/api/v1/desktops']['post']['responses'][400]['content']['application/json']['error']['code'];

/** What the live stream of a desktop sends (GET /desktops/{id}/live). */
export type LiveMessage = Schemas['LiveMessage'];
