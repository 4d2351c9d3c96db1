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
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
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
 *
 * Subscribing: the first store to join a channel sends `SUBSCRIBE`, the last to leave it
 * `UNSUBSCRIBE`; a store that joins again after that sends `SUBSCRIBE` again, so the commands reach
 * Redis in the order of the joins and leaves, and the connection ends up subscribed exactly to the
 * channels that have stores (whatever was still unconfirmed at the time).
 */
export class Subscriber {
  readonly #connect: ReadonlyArray<() => Redis>
  readonly #channels = new Map<string, Set<BusListener>>()
  /**
   * Every channel of `#channels` once `#live` is set, with the reply to the `SUBSCRIBE` last sent
   * for it on `#live` (it settles, never fails): a store that joins waits for it.
   */
  #subscribed = new Map<string, Promise<void>>()
  /** The connection that has sent its `SUBSCRIBE` of every channel (on `ready`); else `undefined`. */
  #live: Redis | undefined
  #next = 0
  #current: Redis | undefined
  #connected = false
  #closed = false
  #attempts = 0
  #timer: ReturnType<typeof setTimeout> | undefined
  #firstReady: Array<(ok: boolean) => void> = []
  /**
   * On a single server, the suffix of each channel's marker: a channel of this subscriber alone,
   * always subscribed and unsubscribed in the same command as its channel, so that a script that
   * counts one subscriber on a channel and one on its marker knows the one is this connection and
   * no other process listens (see `announcing` in scripts.ts). `""` on a cluster (counts are per node).
   */
  readonly #marker: string

  constructor(connect: ReadonlyArray<() => Redis>, singleServer: boolean) {
    this.#connect = connect
    this.#marker = singleServer ? `self:${randomBytes(8).toString("hex")}` : ""
  }

  /**
   * What a write of the store `id` passes its script so that the script may leave out a message
   * no other store would hear: the marker of `channel` while `id` is the only listener here on
   * `channel`, else `""` (always publish).
   */
  self(channel: string, id: string): string {
    if (this.#marker === "") return ""
    const listeners = this.#channels.get(channel)
    if (listeners === undefined || listeners.size !== 1) return ""
    for (const listener of listeners) if (listener.id !== id) return ""
    return channel + this.#marker
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
  add(channel: string, listener: BusListener): Promise<void> {
    let listeners = this.#channels.get(channel)
    if (listeners === undefined) {
      listeners = new Set()
      this.#channels.set(channel, listeners)
    }
    listeners.add(listener)
    const live = this.#live
    // Not ready yet: the channel goes with the others in the connection's first SUBSCRIBE.
    if (live === undefined) return Promise.resolve()
    let subscribed = this.#subscribed.get(channel)
    if (subscribed === undefined) {
      subscribed = this.#subscribe(live, [channel]).then(() => {})
      this.#subscribed.set(channel, subscribed)
    }
    return subscribed
  }

  remove(channel: string, listener: BusListener): void {
    const listeners = this.#channels.get(channel)
    if (listeners === undefined) return
    listeners.delete(listener)
    if (listeners.size > 0) return
    this.#channels.delete(channel)
    if (this.#subscribed.delete(channel)) this.#live?.unsubscribe(...this.#names([channel])).catch(() => {})
  }

  close(): void {
    this.#closed = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#current?.disconnect()
    this.#current = undefined
    this.#live = undefined
    this.#subscribed = new Map()
    this.#connected = false
    this.#settleFirst(false)
  }

  /** The channels and their markers. */
  #names(channels: ReadonlyArray<string>): Array<string> {
    if (this.#marker === "") return channels.slice()
    const names: Array<string> = []
    for (const channel of channels) names.push(channel, channel + this.#marker)
    return names
  }

  /** `SUBSCRIBE`s `channels` with their markers; `false` when it failed, and the connection is dropped. */
  #subscribe(redis: Redis, channels: ReadonlyArray<string>): Promise<boolean> {
    if (channels.length === 0) return Promise.resolve(true)
    return redis.subscribe(...this.#names(channels)).then(
      () => true,
      // The connection is unhealthy: start over, which reports Disconnected and later Connected.
      () => {
        redis.disconnect()
        return false
      }
    )
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
      if (this.#current !== redis) return
      this.#live = redis
      const channels = Array.from(this.#channels.keys())
      const subscribed = this.#subscribe(redis, channels)
      const settled = subscribed.then(() => {})
      for (const channel of channels) this.#subscribed.set(channel, settled)
      subscribed.then((ok) => {
        if (!ok || this.#current !== redis) return
        this.#attempts = 0
        this.#connected = true
        this.#settleFirst(true)
        for (const listeners of this.#channels.values()) for (const listener of listeners) listener.onConnected()
      })
    })
    redis.once("end", () => {
      if (this.#current !== redis) return
      this.#current = undefined
      this.#live = undefined
      this.#subscribed = new Map()
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
