/**
 * Connection sharing as the JDBC extension does it (auth/jdbc/sharing/): a user with an active connection asks for
 * sharing credentials under one of the connection's sharing profiles and gets a share key (ConnectionSharingService,
 * SecureRandomShareKeyGenerator: 44 characters of the URL-safe base64 alphabet). Whoever posts `key=<share key>` to
 * /api/tokens gets an anonymous session of the `-shared` data source holding that one connection, and joins the
 * sharer's live session through it, with the profile's parameters (e.g. `read-only`). When the sharer's connection
 * closes, its keys are invalidated and every tunnel opened through them is closed (ActiveConnectionRecord#invalidate,
 * HashSharedConnectionMap#remove).
 */
import { randomInt } from 'node:crypto';

const URL_SAFE_BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const KEY_LENGTH = 44;

export interface StoredSharingProfile {
  identifier: string;
  name: string;
  primaryConnectionIdentifier: string;
  parameters: Record<string, string>;
  attributes: Record<string, string>;
}

/** SharedConnectionDefinition: the shared active connection, the profile, the key, the tunnels opened with it. */
export interface SharedConnectionDefinition {
  shareKey: string;
  /** Identifier (UUID) of the sharer's active connection. */
  activeConnectionIdentifier: string;
  sharingProfileIdentifier: string;
  tunnels: Set<string>;
}

export function newShareKey(): string {
  let key = '';
  for (let i = 0; i < KEY_LENGTH; i++) key += URL_SAFE_BASE64[randomInt(64)];
  return key;
}

/** HashSharedConnectionMap plus each primary connection's own list of keys (ActiveConnectionRecord's ShareKeyManager). */
export class SharedConnectionMap {
  private readonly byKey = new Map<string, SharedConnectionDefinition>();

  add(definition: SharedConnectionDefinition): void {
    this.byKey.set(definition.shareKey, definition);
  }

  get(key: string): SharedConnectionDefinition | undefined {
    return this.byKey.get(key);
  }

  /** The sharer's connection closed: its keys stop working; answers the tunnels to close with them. */
  invalidate(activeConnectionIdentifier: string): string[] {
    const closing: string[] = [];
    for (const [key, definition] of this.byKey) {
      if (definition.activeConnectionIdentifier !== activeConnectionIdentifier) continue;
      this.byKey.delete(key);
      closing.push(...definition.tunnels);
    }
    return closing;
  }

  clear(): void {
    this.byKey.clear();
  }

  get size(): number {
    return this.byKey.size;
  }
}
