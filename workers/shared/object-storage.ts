/**
 * The storage of a SQLite-backed Durable Object, the one way every object here reads and
 * writes it: a schema brought up to date by numbered steps, a small key/value table
 * (`meta`, JSON values) for the object's singletons, and typed row helpers over its SQL.
 *
 * A step runs once, in the same transaction as the version it records, so an object
 * reset half-way through runs it again from the start. Steps are only ever appended:
 * a deployed object may hold any earlier version.
 */
export type SchemaStep = (sql: SqlStorage) => void;

export class ObjectStorage {
  readonly sql: SqlStorage;

  constructor(private readonly storage: DurableObjectStorage) {
    this.sql = storage.sql;
  }

  /** Brings the schema up to `steps.length`; step i (0-based) makes version i + 1. */
  migrate(steps: readonly SchemaStep[]): void {
    this.sql.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
    const version = Number(this.get<number>('schema') ?? 0);
    for (let v = version; v < steps.length; v++) {
      this.transaction(() => {
        steps[v]?.(this.sql);
        this.put('schema', v + 1);
      });
    }
  }

  get<T>(key: string): T | null {
    const row = this.first<{ value: string }>('SELECT value FROM meta WHERE key = ?', key);
    return row ? (JSON.parse(row.value) as T) : null;
  }

  put(key: string, value: unknown): void {
    this.sql.exec(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      key,
      JSON.stringify(value),
    );
  }

  delete(key: string): void {
    this.sql.exec('DELETE FROM meta WHERE key = ?', key);
  }

  rows<T extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]): T[] {
    return this.sql.exec<T>(query, ...bindings).toArray();
  }

  first<T extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]): T | null {
    return this.sql.exec<T>(query, ...bindings).toArray()[0] ?? null;
  }

  /** A count, a min, a max: the first column of the first row. */
  scalar<T extends SqlStorageValue>(query: string, ...bindings: unknown[]): T | null {
    const row = this.sql
      .exec(query, ...bindings)
      .raw()
      .next();
    return row.done ? null : ((row.value[0] as T) ?? null);
  }

  /** Rows written by one statement (0 when an ON CONFLICT DO NOTHING kept what was there). */
  run(query: string, ...bindings: unknown[]): number {
    return this.sql.exec(query, ...bindings).rowsWritten;
  }

  transaction<T>(fn: () => T): T {
    return this.storage.transactionSync(fn);
  }
}
