/**
 * The invalidation bus: every change a store makes is published on its namespace's channel, and
 * every store hears the changes of the others.
 *
 * Ordering: a message names its publisher (one id per opened store), the bucket it concerns and a
 * sequence number per (publisher, bucket). Messages of one bucket are published from inside the
 * scripts that make the change, so they leave from the node that owns the bucket's slot, in the
 * order the publisher sent the commands, and arrive in that order.
 *
 * Failure: a listener that sees a sequence number other than the next one has missed a change and
 * reports a `Flush` (the publisher may have changed anything). When the subscriber connection
 * drops, listeners report `Disconnected` and forget the numbers they saw; when it is back and
 * subscribed again, `Connected`. Invariant: between `Connected` and the next `Disconnected` or
 * `Flush`, a listener has reported every change of every other publisher it heard from.
 */
import type { Backend } from "@vela/core"
import { Chunk, Effect, Stream } from "effect"
import type { Redis } from "ioredis"
import { randomBytes } from "node:crypto"

type Invalidation = Backend.Invalidation

/** What travels on the channel, as JSON. */
export interface BusMessage {
  /** Publisher id. */
  readonly p: string
  /** Bucket. */
  readonly b: number
  /** Sequence number per publisher and bucket; absent on hints (`r`) that change nothing. */
  readonly s?: number
  readonly k?: ReadonlyArray<string>
  readonly t?: string
  readonly f?: 1
  /** A single-flight lease on this key was released. */
  readonly r?: string
}

export interface BusListener {
  /** The publisher id of this listener: its own messages are not delivered to it. */
  readonly id: string
  readonly onMessage: (message: BusMessage) => void
  readonly onConnected: () => void
  readonly onDisconnected: () => void
}

/**
 * One subscriber connection per backend, shared by its stores. It reconnects by itself (rotating
 * through `connect`, for clusters), subscribes again to every channel, then reports `Connected`.
 */
export class Subscriber {
  readonly #connect: ReadonlyArray<() => Redis>
  readonly #channels = new Map<string, Set<BusListener>>()
  /** Subscriptions sent and not yet confirmed: a second listener waits for the first one's. */
  readonly #subscribing = new Map<string, Promise<void>>()
  #next = 0
  #current: Redis | undefined
  #connected = false
  #closed = false
  #attempts = 0
  #timer: ReturnType<typeof setTimeout> | undefined
  #firstReady: Array<(ok: boolean) => void> = []
  /**
   * On a single server, a channel of this connection alone, subscribed on every (re)connection
   * with the others in one `SUBSCRIBE`: a script that counts one subscriber on it (this connection
   * is up) and one on a store's channel (which this connection holds while the store is open)
   * knows no other process listens (see `announcing` in scripts.ts). `""` on a cluster (counts are per node).
   */
  readonly #self: string

  constructor(connect: ReadonlyArray<() => Redis>, prefix: string | undefined) {
    this.#connect = connect
    this.#self = prefix === undefined ? "" : `${prefix}vela-bus-self:${randomBytes(8).toString("hex")}`
  }

  /**
   * What a write of the store `id` passes its script so that the script may leave out a message
   * no other store would hear: this connection's own channel while `id` is the only listener here
   * on `channel`, else `""` (always publish).
   */
  self(channel: string, id: string): string {
    if (this.#self === "") return ""
    const listeners = this.#channels.get(channel)
    if (listeners === undefined || listeners.size !== 1) return ""
    for (const listener of listeners) if (listener.id !== id) return ""
    return this.#self
  }

  get connected(): boolean {
    return this.#connected
  }

  /** Connects; resolves `true` once subscribed, `false` when the first attempt fails. */
  start(): Promise<boolean> {
    return new Promise((resolve) => {
      this.#firstReady.push(resolve)
      this.#open()
    })
  }

  /** Listens on `channel`; resolves once subscribed (or at once while disconnected). */
  async add(channel: string, listener: BusListener): Promise<void> {
    let listeners = this.#channels.get(channel)
    if (listeners === undefined) {
      listeners = new Set()
      this.#channels.set(channel, listeners)
    }
    listeners.add(listener)
    const current = this.#current
    if (!this.#connected || current === undefined) return
    let subscribing = this.#subscribing.get(channel)
    if (subscribing === undefined) {
      if (listeners.size > 1) return
      subscribing = current.subscribe(channel).then(
        () => {},
        // The connection is unhealthy: start over, which reports Disconnected and later Connected.
        () => current.disconnect()
      ).finally(() => this.#subscribing.delete(channel))
      this.#subscribing.set(channel, subscribing)
    }
    await subscribing
  }

  remove(channel: string, listener: BusListener): void {
    const listeners = this.#channels.get(channel)
    if (listeners === undefined) return
    listeners.delete(listener)
    if (listeners.size > 0) return
    this.#channels.delete(channel)
    if (this.#connected) this.#current?.unsubscribe(channel).catch(() => {})
  }

  close(): void {
    this.#closed = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#current?.disconnect()
    this.#current = undefined
    this.#connected = false
    this.#settleFirst(false)
  }

  #settleFirst(ok: boolean) {
    const waiting = this.#firstReady
    this.#firstReady = []
    for (const resolve of waiting) resolve(ok)
  }

  #open() {
    if (this.#closed) return
    const redis = this.#connect[this.#next++ % this.#connect.length]()
    this.#current = redis
    redis.on("error", () => {})
    redis.on("message", (channel: string, text: string) => this.#dispatch(channel, text))
    redis.once("ready", () => {
      const channels = Array.from(this.#channels.keys())
      if (this.#self !== "") channels.push(this.#self)
      const subscribed = channels.length === 0 ? Promise.resolve() : redis.subscribe(...channels)
      subscribed.then(
        () => {
          if (this.#current !== redis) return
          this.#attempts = 0
          this.#connected = true
          this.#settleFirst(true)
          for (const listeners of this.#channels.values()) for (const listener of listeners) listener.onConnected()
        },
        () => redis.disconnect()
      )
    })
    redis.once("end", () => {
      if (this.#current !== redis) return
      this.#current = undefined
      const was = this.#connected
      this.#connected = false
      if (was) {
        for (const listeners of this.#channels.values()) for (const listener of listeners) listener.onDisconnected()
      }
      this.#settleFirst(false)
      if (this.#closed) return
      const delay = Math.min(25 * 2 ** this.#attempts++, 1_000)
      // Reconnecting does not keep Node alive: a program done with its caches exits while Redis is down.
      this.#timer = setTimeout(() => {
        this.#timer = undefined
        this.#open()
      }, delay).unref()
    })
    redis.connect().catch(() => {})
  }

  #dispatch(channel: string, text: string) {
    const listeners = this.#channels.get(channel)
    if (listeners === undefined) return
    // Every store hears its own writes: skip them before parsing (messages start with the id).
    if (listeners.size === 1) {
      for (const listener of listeners) if (text.startsWith(listener.id, 6)) return
    }
    let message: BusMessage
    try {
      message = JSON.parse(text)
    } catch {
      return
    }
    if (typeof message !== "object" || message === null || typeof message.p !== "string") return
    for (const listener of listeners) if (listener.id !== message.p) listener.onMessage(message)
  }
}

/**
 * One consumer's queue of invalidations, never growing without bound: when more than `capacity`
 * changes wait, they collapse into one `Flush` (or `Disconnected`, while disconnected), which
 * covers all of them.
 */
export class Mailbox {
  #buffer: Array<Invalidation> = []
  #waiter: ((items: Array<Invalidation>) => void) | undefined
  #disconnected = false
  readonly #capacity: number

  constructor(capacity: number) {
    this.#capacity = capacity
  }

  offer(item: Invalidation): void {
    if (item._tag === "Disconnected") this.#disconnected = true
    else if (item._tag === "Connected") this.#disconnected = false
    const waiter = this.#waiter
    if (waiter !== undefined) {
      this.#waiter = undefined
      waiter([item])
      return
    }
    this.#buffer.push(item)
    if (this.#buffer.length > this.#capacity) {
      this.#buffer = [this.#disconnected ? { _tag: "Disconnected" } : { _tag: "Flush" }]
    }
  }

  readonly take: Effect.Effect<Chunk.Chunk<Invalidation>> = Effect.async((resume) => {
    if (this.#buffer.length > 0) {
      const items = this.#buffer
      this.#buffer = []
      return resume(Effect.succeed(Chunk.unsafeFromArray(items)))
    }
    const waiter = (items: Array<Invalidation>) => resume(Effect.succeed(Chunk.unsafeFromArray(items)))
    this.#waiter = waiter
    return Effect.sync(() => {
      if (this.#waiter === waiter) this.#waiter = undefined
    })
  })
}

/**
 * The invalidations of one store, for any number of consumers, each with its own `Mailbox`. What
 * arrives before the first consumer runs (the near cache starts reading just after `open`) is kept
 * for it; a consumer that starts while the bus is down begins with `Disconnected`.
 */
export class Inbox {
  #early: Mailbox | undefined
  readonly #consumers = new Set<Mailbox>()
  readonly #capacity: number
  #disconnected = false

  constructor(capacity = 4_096) {
    this.#capacity = capacity
    this.#early = new Mailbox(capacity)
  }

  /** How many streams are reading. */
  get consumers(): number {
    return this.#consumers.size
  }

  offer(item: Invalidation): void {
    if (item._tag === "Disconnected") this.#disconnected = true
    else if (item._tag === "Connected") this.#disconnected = false
    if (this.#consumers.size === 0) return (this.#early ??= new Mailbox(this.#capacity)).offer(item)
    for (const mailbox of this.#consumers) mailbox.offer(item)
  }

  readonly stream: Stream.Stream<Invalidation> = Stream.suspend(() => {
    let mailbox = this.#early
    this.#early = undefined
    if (mailbox === undefined) {
      mailbox = new Mailbox(this.#capacity)
      if (this.#disconnected) mailbox.offer({ _tag: "Disconnected" })
    }
    const own = mailbox
    this.#consumers.add(own)
    return Stream.ensuring(Stream.repeatEffectChunk(own.take), Effect.sync(() => this.#consumers.delete(own)))
  })
}

/** Tracks the sequence numbers a listener has seen, per publisher and bucket. */
export class Sequences {
  #last = new Map<string, number>()

  /** `true` when `message` is the next one of its publisher and bucket (or the first heard). */
  next(message: BusMessage): boolean {
    if (message.s === undefined) return true
    const id = `${message.p}/${message.b}`
    const last = this.#last.get(id)
    if (this.#last.size > 100_000 && last === undefined) this.#last = new Map()
    // A late message (a command retried after NOSCRIPT) is a gap once, and does not move the mark back.
    if (last === undefined || message.s > last) this.#last.set(id, message.s)
    return last === undefined || message.s === last + 1
  }

  reset(): void {
    this.#last = new Map()
  }
}
