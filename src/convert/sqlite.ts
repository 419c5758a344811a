/**
 * SQLite databases through sql.js (SQLite compiled to WebAssembly: installs
 * offline, no native build). sql.js works on a copy of the file in memory,
 * which is never written back; `PRAGMA query_only` also refuses writes from
 * a --query. Table and column names enter SQL only as quoted identifiers.
 */
import * as fs from 'node:fs';
import initSqlJs, { type Database, type Statement } from 'sql.js';
import { UsageError, UserError } from '../common/errors.js';
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

/**
 * Runs an sql.js call; its failure becomes one line. A damaged file (the
 * header is SQLite's, the pages are not) can surface at any call, so every
 * call goes through here.
 */
function sql<T>(file: string, what: string, call: () => T): T {
  try {
    return call();
  } catch (err) {
    if (err instanceof UserError) throw err;
    const message = sqlMessage(err);
    if (/database disk image is malformed|file is not a database/.test(message)) throw new UserError(`${file}: not a valid SQLite database (corrupt: ${message}); check the file`);
    throw new UserError(`${what}: ${message}`);
  }
}

function prepare(db: Database, sqlText: string, file: string, what: string): Statement {
  return sql(file, what, () => db.prepare(sqlText));
}

function tableNames(db: Database, file: string): string[] {
  const res = sql(file, file, () => db.exec("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"));
  return res.length ? res[0].values.map((v) => String(v[0])) : [];
}

/**
 * The one statement of --query. sql.js's prepare() would silently ignore
 * anything after the first statement, so the rest must hold none.
 */
function prepareQuery(db: Database, query: string, file: string): Statement {
  const what = `${file}: --query`;
  const statements = sql(file, what, () => db.iterateStatements(query));
  const first = sql(file, what, () => statements.next());
  if (first.done) throw new UsageError('--query holds no SQL statement; give one SELECT');
  const rest = statements.getRemainingSQL();
  let more: boolean;
  try {
    const next = db.iterateStatements(rest).next();
    next.value?.free();
    more = !next.done;
  } catch {
    more = true; // text after the first statement that does not even parse
  }
  if (more) {
    first.value.free();
    throw new UsageError(`--query holds more than one SQL statement; give a single SELECT (remove what follows the first ";": ${JSON.stringify(rest.trim().slice(0, 40))})`);
  }
  return first.value;
}

function listed(names: string[]): string {
  return names.length ? names.map((n) => JSON.stringify(n)).join(', ') : 'none';
}

/** The SELECT that reads the pairs: the user's --query, or one built from --table and the columns. */
function pairStatement(db: Database, file: string, opts: SqliteOptions): { stmt: Statement; total?: number } {
  if (opts.query !== undefined) {
    const stmt = prepareQuery(db, opts.query, file);
    const cols = stmt.getColumnNames();
    if (cols.length !== 2) {
      stmt.free();
      throw new UserError(
        `${file}: --query returns ${cols.length} column${cols.length === 1 ? '' : 's'} (${listed(cols)}); it must return exactly two, the question then the answer`,
      );
    }
    return { stmt };
  }
  const tables = tableNames(db, file);
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
  const probe = prepare(db, `SELECT * FROM ${from} LIMIT 0`, file, `${file}: table ${JSON.stringify(table)}`);
  const names = probe.getColumnNames();
  probe.free();
  const { question, answer } = chooseColumns({ names, count: names.length }, opts, `${file}: table ${JSON.stringify(table)}`);
  const count = sql(file, file, () => db.exec(`SELECT COUNT(*) FROM ${from}`));
  const stmt = prepare(db, `SELECT ${quoteIdentifier(names[question])}, ${quoteIdentifier(names[answer])} FROM ${from}`, file, file);
  return { stmt, total: Number(count[0]?.values[0]?.[0] ?? 0) };
}

export function readSqlite(file: string, opts: SqliteOptions): RowSource {
  let done = 0;
  let total: number | undefined;
  async function* batches(): AsyncGenerator<Row[]> {
    if (!isSqliteFile(file)) throw new UserError(`${file}: not an SQLite database (it does not start with the SQLite header); check the file or --format`);
    const SQL = await initSqlJs();
    const db = sql(file, `${file}: cannot open as SQLite`, () => new SQL.Database(fs.readFileSync(file)));
    try {
      sql(file, `${file}: cannot open as SQLite`, () => db.exec('PRAGMA query_only = ON'));
      const { stmt, total: count } = pairStatement(db, file, opts);
      total = count;
      try {
        const batchSize = 1000;
        let rows: Row[] = [];
        for (;;) {
          if (!sql(file, opts.query !== undefined ? `${file}: --query` : file, () => stmt.step())) break;
          const [q, a] = stmt.get();
          done++;
          const row = pairRow(q, a);
          row.at = done;
          rows.push(row);
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
    rowsAre: 'row',
    get total() {
      return total;
    },
    done: () => done,
    batches,
  };
}
