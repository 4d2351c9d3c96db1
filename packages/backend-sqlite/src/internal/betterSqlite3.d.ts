/**
 * The part of better-sqlite3 12.x this package uses, typed from its `lib/` sources (the package
 * ships no declarations, and `@types/better-sqlite3` would be one more dependency to keep in step).
 */
declare module "better-sqlite3" {
  namespace Database {
    interface Options {
      readonly readonly?: boolean
      readonly fileMustExist?: boolean
      /** Busy timeout in milliseconds (default 5,000). */
      readonly timeout?: number
    }

    interface RunResult {
      readonly changes: number
      readonly lastInsertRowid: number | bigint
    }

    interface Statement<Params extends ReadonlyArray<unknown> = ReadonlyArray<unknown>, Row = unknown> {
      run(...params: Params): RunResult
      get(...params: Params): Row | undefined
      all(...params: Params): Array<Row>
      pluck(toggle?: boolean): this
      raw(toggle?: boolean): this
    }

    interface Transaction<F extends (...args: Array<any>) => unknown> {
      (...args: Parameters<F>): ReturnType<F>
      readonly deferred: (...args: Parameters<F>) => ReturnType<F>
      readonly immediate: (...args: Parameters<F>) => ReturnType<F>
      readonly exclusive: (...args: Parameters<F>) => ReturnType<F>
    }

    interface SqliteError extends Error {
      readonly code: string
    }
  }

  interface Database {
    readonly name: string
    readonly open: boolean
    readonly inTransaction: boolean
    readonly memory: boolean
    prepare<Params extends ReadonlyArray<unknown> = ReadonlyArray<unknown>, Row = unknown>(
      source: string
    ): Database.Statement<Params, Row>
    exec(source: string): this
    pragma(source: string, options: { readonly simple: true }): unknown
    pragma(source: string, options?: { readonly simple?: false }): Array<unknown>
    transaction<F extends (...args: Array<any>) => unknown>(fn: F): Database.Transaction<F>
    close(): this
  }

  const Database: {
    new(filename: string, options?: Database.Options): Database
    readonly SqliteError: new(message: string, code: string) => Database.SqliteError
  }

  export = Database
}
