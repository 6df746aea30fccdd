/**
 * The storage of a SQLite-backed Durable Object, the one way every object here reads and
 * writes it: a schema brought up to date by numbered steps, a small key/value table
 * (`meta`, JSON values) for the object's singletons, and typed row helpers over its SQL.
 *
 * A step runs once, in the same transaction as the version it records, so an object
 * reset half-way through runs it again from the start. Steps are only ever appended:
 * a deployed object may hold any earlier version. Objects deployed before they had a
 * version start at 0, so a step 1 must accept what they already hold (CREATE TABLE IF
 * NOT EXISTS, a column added only when `hasColumn` says it is missing).
 */
export type SchemaStep = (sql: SqlStorage, storage: ObjectStorage) => void;

export class ObjectStorage {
  readonly sql: SqlStorage;
  /** The object's key/value storage of the Storage API: only for steps that move what older releases kept there. */
  readonly kv: SyncKvStorage;
  private steps: readonly SchemaStep[] = [];
  private migrated = false;

  constructor(private readonly storage: DurableObjectStorage) {
    this.sql = storage.sql;
    this.kv = storage.kv;
  }

  /** Brings the schema up to `steps.length`; step i (0-based) makes version i + 1. */
  migrate(steps: readonly SchemaStep[]): void {
    this.steps = steps;
    this.sql.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
    this.migrated = true;
    const version = Number(this.get<number>('schema') ?? 0);
    for (let v = version; v < steps.length; v++) {
      this.transaction(() => {
        steps[v]?.(this.sql, this);
        this.put('schema', v + 1);
      });
    }
  }

  /**
   * Deletes everything the object holds, so it takes no space until it is used again; the
   * schema comes back on this instance's next read or write through these helpers (not
   * through `sql` directly).
   */
  async deleteAll(): Promise<void> {
    await this.storage.deleteAll();
    this.migrated = false;
  }

  get<T>(key: string): T | null {
    const row = this.first<{ value: string }>('SELECT value FROM meta WHERE key = ?', key);
    return row ? (JSON.parse(row.value) as T) : null;
  }

  put(key: string, value: unknown): void {
    this.run(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      key,
      JSON.stringify(value),
    );
  }

  delete(key: string): void {
    this.run('DELETE FROM meta WHERE key = ?', key);
  }

  rows<T extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]): T[] {
    return this.exec<T>(query, bindings).toArray();
  }

  first<T extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]): T | null {
    return this.exec<T>(query, bindings).toArray()[0] ?? null;
  }

  /** A count, a min, a max: the first column of the first row. */
  scalar<T extends SqlStorageValue>(query: string, ...bindings: unknown[]): T | null {
    const row = this.exec(query, bindings).raw().next();
    return row.done ? null : ((row.value[0] as T) ?? null);
  }

  /** Rows written by one statement (0 when an ON CONFLICT DO NOTHING kept what was there). */
  run(query: string, ...bindings: unknown[]): number {
    return this.exec(query, bindings).rowsWritten;
  }

  transaction<T>(fn: () => T): T {
    this.ready();
    return this.storage.transactionSync(fn);
  }

  /** For steps: whether a table exists (a release before versions may not have made it). */
  hasTable(table: string): boolean {
    return this.sql.exec(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`, table).toArray().length > 0;
  }

  /** For steps: whether a table has a column (add one only when it is missing). */
  hasColumn(table: string, column: string): boolean {
    return this.sql
      .exec<{ name: string }>(`PRAGMA table_info(${table})`)
      .toArray()
      .some((c) => c.name === column);
  }

  private exec<T extends Record<string, SqlStorageValue>>(query: string, bindings: unknown[]): SqlStorageCursor<T> {
    this.ready();
    return this.sql.exec<T>(query, ...bindings);
  }

  /** After deleteAll: the schema again, before the first statement that needs it. */
  private ready(): void {
    if (!this.migrated) this.migrate(this.steps);
  }
}
