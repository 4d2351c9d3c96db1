/** The few calls of better-sqlite3 12.x that the raw SQLite contender makes (the package ships no types). */
declare module "better-sqlite3" {
  interface Statement<P extends Array<unknown>, R> {
    get(...params: P): R | undefined
    run(...params: P): { changes: number }
  }
  class Database {
    constructor(filename: string)
    pragma(source: string): unknown
    exec(source: string): this
    prepare<P extends Array<unknown>, R = unknown>(source: string): Statement<P, R>
    close(): this
  }
  export default Database
}
