/**
 * A binary min-heap of entries ordered by `expiresAt`, then by write order. Each entry remembers
 * its slot, so removing one costs O(log n) and finding the next to expire O(1) amortized.
 *
 * The heap orders entries by the expiry and write number they had when placed (kept beside them,
 * in slot order). An entry re-timed later than its place (a put with a TTL over a live entry, the
 * usual case) stays where it is: its place is a lower bound, and `peek` re-places the top when it is
 * out of date. So a re-write costs O(1), and only an entry that reaches the top is moved.
 */

export interface HeapItem {
  expiresAt: number | null
  seq: number
  heapIndex: number
}

export class ExpiryHeap<A extends HeapItem> {
  #items: Array<A> = []
  /** The expiry and write number each slot's entry is placed by: never after its own. */
  #expiries: Array<number> = []
  #seqs: Array<number> = []

  get size(): number {
    return this.#items.length
  }

  /** The entry that expires first (of the earliest expiry, the first written). */
  peek(): A | undefined {
    const items = this.#items
    for (;;) {
      const top = items[0]
      if (top === undefined || (this.#expiries[0] === top.expiresAt && this.#seqs[0] === top.seq)) return top
      this.#expiries[0] = top.expiresAt!
      this.#seqs[0] = top.seq
      this.#down(0)
    }
  }

  push(item: A): void {
    const index = this.#items.length
    this.#items.push(item)
    this.#expiries.push(item.expiresAt!)
    this.#seqs.push(item.seq)
    this.#up(index)
  }

  /** After `item`'s `expiresAt` or `seq` changed (to a non-null expiry): moves it up when it now comes sooner. */
  retime(item: A): void {
    const index = item.heapIndex
    if (index < 0) return this.push(item)
    const expiresAt = item.expiresAt!
    const placed = this.#expiries[index]
    if (expiresAt > placed || (expiresAt === placed && item.seq >= this.#seqs[index])) return
    this.#expiries[index] = expiresAt
    this.#seqs[index] = item.seq
    this.#up(index)
  }

  remove(item: A): void {
    const index = item.heapIndex
    if (index < 0) return
    const last = this.#items.pop()!
    const lastExpiry = this.#expiries.pop()!
    const lastSeq = this.#seqs.pop()!
    item.heapIndex = -1
    if (last === item) return
    this.#set(index, last, lastExpiry, lastSeq)
    this.#down(index)
    this.#up(last.heapIndex)
  }

  clear(): void {
    for (const item of this.#items) item.heapIndex = -1
    this.#items = []
    this.#expiries = []
    this.#seqs = []
  }

  #set(index: number, item: A, expiry: number, seq: number): void {
    this.#items[index] = item
    this.#expiries[index] = expiry
    this.#seqs[index] = seq
    item.heapIndex = index
  }

  #before(expiry: number, seq: number, index: number): boolean {
    const other = this.#expiries[index]
    return expiry < other || (expiry === other && seq < this.#seqs[index])
  }

  #up(index: number): void {
    const items = this.#items
    const item = items[index]
    const expiry = this.#expiries[index]
    const seq = this.#seqs[index]
    while (index > 0) {
      const parent = (index - 1) >> 1
      if (!this.#before(expiry, seq, parent)) break
      this.#set(index, items[parent], this.#expiries[parent], this.#seqs[parent])
      index = parent
    }
    this.#set(index, item, expiry, seq)
  }

  #down(index: number): void {
    const items = this.#items
    const length = items.length
    const item = items[index]
    const expiry = this.#expiries[index]
    const seq = this.#seqs[index]
    for (;;) {
      const left = 2 * index + 1
      if (left >= length) break
      const right = left + 1
      const child = right < length && this.#before(this.#expiries[right], this.#seqs[right], left) ? right : left
      const childExpiry = this.#expiries[child]
      if (!(childExpiry < expiry || (childExpiry === expiry && this.#seqs[child] < seq))) break
      this.#set(index, items[child], this.#expiries[child], this.#seqs[child])
      index = child
    }
    this.#set(index, item, expiry, seq)
  }
}
