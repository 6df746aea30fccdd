/**
 * Guacamole's permission model as the JDBC extension stores it: per-user object permissions in six sets plus system
 * permissions, serialised as APIPermissionSet.
 */

export const OBJECT_PERMISSION_TYPES = ['READ', 'UPDATE', 'DELETE', 'ADMINISTER'] as const;
export type ObjectPermissionType = (typeof OBJECT_PERMISSION_TYPES)[number];

export const SYSTEM_PERMISSION_TYPES = [
  'CREATE_USER',
  'CREATE_USER_GROUP',
  'CREATE_CONNECTION',
  'CREATE_CONNECTION_GROUP',
  'CREATE_SHARING_PROFILE',
  'AUDIT',
  'ADMINISTER',
] as const;
export type SystemPermissionType = (typeof SYSTEM_PERMISSION_TYPES)[number];

export const OBJECT_PERMISSION_SETS = [
  'connectionPermissions',
  'connectionGroupPermissions',
  'sharingProfilePermissions',
  'activeConnectionPermissions',
  'userPermissions',
  'userGroupPermissions',
] as const;
export type ObjectPermissionSetName = (typeof OBJECT_PERMISSION_SETS)[number];

export interface ApiPermissionSet {
  connectionPermissions: Record<string, ObjectPermissionType[]>;
  connectionGroupPermissions: Record<string, ObjectPermissionType[]>;
  sharingProfilePermissions: Record<string, ObjectPermissionType[]>;
  activeConnectionPermissions: Record<string, ObjectPermissionType[]>;
  userPermissions: Record<string, ObjectPermissionType[]>;
  userGroupPermissions: Record<string, ObjectPermissionType[]>;
  systemPermissions: SystemPermissionType[];
}

export const isObjectPermissionType = (value: string): value is ObjectPermissionType =>
  (OBJECT_PERMISSION_TYPES as readonly string[]).includes(value);

export const isSystemPermissionType = (value: string): value is SystemPermissionType =>
  (SYSTEM_PERMISSION_TYPES as readonly string[]).includes(value);

export class PermissionSet {
  private readonly objects = new Map<ObjectPermissionSetName, Map<string, Set<ObjectPermissionType>>>(
    OBJECT_PERMISSION_SETS.map((name) => [name, new Map()]),
  );
  readonly system = new Set<SystemPermissionType>();

  private set(name: ObjectPermissionSetName): Map<string, Set<ObjectPermissionType>> {
    const set = this.objects.get(name);
    if (!set) throw new Error(`unknown permission set ${name}`);
    return set;
  }

  has(name: ObjectPermissionSetName, identifier: string, type: ObjectPermissionType): boolean {
    return this.set(name).get(identifier)?.has(type) ?? false;
  }

  add(name: ObjectPermissionSetName, identifier: string, ...types: ObjectPermissionType[]): void {
    const set = this.set(name);
    const granted = set.get(identifier) ?? new Set<ObjectPermissionType>();
    for (const type of types) granted.add(type);
    set.set(identifier, granted);
  }

  remove(name: ObjectPermissionSetName, identifier: string, type: ObjectPermissionType): void {
    const granted = this.set(name).get(identifier);
    if (!granted) return;
    granted.delete(type);
    if (granted.size === 0) this.set(name).delete(identifier);
  }

  /** Rows referencing a deleted object go with it (ON DELETE CASCADE in the JDBC schema). */
  forget(name: ObjectPermissionSetName, identifier: string): void {
    this.set(name).delete(identifier);
  }

  toApi(): ApiPermissionSet {
    const dump = (name: ObjectPermissionSetName) =>
      Object.fromEntries(
        [...this.set(name)].map(([identifier, types]) => [identifier, OBJECT_PERMISSION_TYPES.filter((type) => types.has(type))]),
      );
    return {
      connectionPermissions: dump('connectionPermissions'),
      connectionGroupPermissions: dump('connectionGroupPermissions'),
      sharingProfilePermissions: dump('sharingProfilePermissions'),
      activeConnectionPermissions: dump('activeConnectionPermissions'),
      userPermissions: dump('userPermissions'),
      userGroupPermissions: dump('userGroupPermissions'),
      systemPermissions: SYSTEM_PERMISSION_TYPES.filter((type) => this.system.has(type)),
    };
  }
}
