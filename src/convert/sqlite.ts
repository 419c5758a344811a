/**
 * SQLite databases through sql.js (SQLite compiled to WebAssembly: installs
 * offline, no native build). sql.js works on a copy of the file in memory,
 * which is never written back; `PRAGMA query_only` also refuses writes from
 * a --query. Table and column names enter SQL only as quoted identifiers.
 */
import * as fs from 'node:fs';
import initSqlJs, { type Database, type Statement } from 'sql.js';
import { UserError } from '../common/errors.js';
import { chooseColumns } from './columns.js';
import { pairRow, type Row, type RowSource } from './rows.js';

export interface SqliteOptions {
  table?: string;
  /** A SELECT returning two columns, question then answer. */
  query?: string;
  questionCol?: string;
  answerCol?: string;
}

const MAGIC = 'SQLite format 3\0';

/** True when the file starts with SQLite's header. */
export function isSqliteFile(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(MAGIC.length);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return n === MAGIC.length && buf.toString('latin1') === MAGIC;
  } finally {
    fs.closeSync(fd);
  }
}

/** An SQL identifier in double quotes, embedded quotes doubled. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function sqlMessage(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ');
}

function prepare(db: Database, sql: string, what: string): Statement {
  try {
    return db.prepare(sql);
  } catch (err) {
    throw new UserError(`${what}: ${sqlMessage(err)}`);
  }
}

function tableNames(db: Database): string[] {
  const res = db.exec("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name");
  return res.length ? res[0].values.map((v) => String(v[0])) : [];
}

function listed(names: string[]): string {
  return names.length ? names.map((n) => JSON.stringify(n)).join(', ') : 'none';
}

/** The SELECT that reads the pairs: the user's --query, or one built from --table and the columns. */
function pairStatement(db: Database, file: string, opts: SqliteOptions): { stmt: Statement; total?: number } {
  if (opts.query !== undefined) {
    const stmt = prepare(db, opts.query, `${file}: --query`);
    const cols = stmt.getColumnNames();
    if (cols.length !== 2) {
      stmt.free();
      throw new UserError(
        `${file}: --query returns ${cols.length} column${cols.length === 1 ? '' : 's'} (${listed(cols)}); it must return exactly two, the question then the answer`,
      );
    }
    return { stmt };
  }
  const tables = tableNames(db);
  let table = opts.table;
  if (table === undefined) {
    if (tables.length !== 1) throw new UserError(`${file}: name the table with --table (tables: ${listed(tables)}) or give --query`);
    table = tables[0];
  } else if (!tables.includes(table)) {
    // SQLite's own names are case-insensitive.
    const folded = tables.find((t) => t.toLowerCase() === table?.toLowerCase());
    if (folded === undefined) throw new UserError(`${file}: no table ${JSON.stringify(table)}; the tables are ${listed(tables)}`);
    table = folded;
  }
  const from = quoteIdentifier(table);
  const probe = prepare(db, `SELECT * FROM ${from} LIMIT 0`, `${file}: table ${JSON.stringify(table)}`);
  const names = probe.getColumnNames();
  probe.free();
  const { question, answer } = chooseColumns({ names, count: names.length }, opts, `${file}: table ${JSON.stringify(table)}`);
  const count = db.exec(`SELECT COUNT(*) FROM ${from}`);
  const stmt = prepare(db, `SELECT ${quoteIdentifier(names[question])}, ${quoteIdentifier(names[answer])} FROM ${from}`, file);
  return { stmt, total: Number(count[0]?.values[0]?.[0] ?? 0) };
}

export function readSqlite(file: string, opts: SqliteOptions): RowSource {
  let done = 0;
  let total: number | undefined;
  async function* batches(): AsyncGenerator<Row[]> {
    if (!isSqliteFile(file)) throw new UserError(`${file}: not an SQLite database (it does not start with the SQLite header); check the file or --format`);
    const SQL = await initSqlJs();
    let db: Database;
    try {
      db = new SQL.Database(fs.readFileSync(file));
      db.exec('PRAGMA query_only = ON');
    } catch (err) {
      throw new UserError(`${file}: cannot open as SQLite: ${sqlMessage(err)}`);
    }
    try {
      const { stmt, total: count } = pairStatement(db, file, opts);
      total = count;
      try {
        const batchSize = 1000;
        let rows: Row[] = [];
        for (;;) {
          let more: boolean;
          try {
            more = stmt.step();
          } catch (err) {
            throw new UserError(`${file}: ${opts.query !== undefined ? '--query: ' : ''}${sqlMessage(err)}`);
          }
          if (!more) break;
          const [q, a] = stmt.get();
          rows.push(pairRow(q, a));
          done++;
          if (rows.length === batchSize) {
            yield rows;
            rows = [];
          }
        }
        yield rows;
      } finally {
        stmt.free();
      }
    } finally {
      db.close();
    }
  }
  return {
    unit: 'rows',
    get total() {
      return total;
    },
    done: () => done,
    batches,
  };
}
