/**
 * A binary min-heap of entries ordered by `expiresAt`, then by write order. Each entry remembers
 * its slot, so removing or re-timing one costs O(log n) and finding the next to expire O(1).
 */

export interface HeapItem {
  expiresAt: number | null
  seq: number
  heapIndex: number
}

const before = (a: HeapItem, b: HeapItem): boolean =>
  a.expiresAt! < b.expiresAt! || (a.expiresAt === b.expiresAt && a.seq < b.seq)

export class ExpiryHeap<A extends HeapItem> {
  #items: Array<A> = []

  get size(): number {
    return this.#items.length
  }

  peek(): A | undefined {
    return this.#items[0]
  }

  push(item: A): void {
    item.heapIndex = this.#items.length
    this.#items.push(item)
    this.#up(item.heapIndex)
  }

  remove(item: A): void {
    const index = item.heapIndex
    if (index < 0) return
    const last = this.#items.pop()!
    item.heapIndex = -1
    if (last === item) return
    this.#items[index] = last
    last.heapIndex = index
    this.#down(index)
    this.#up(last.heapIndex)
  }

  clear(): void {
    for (const item of this.#items) item.heapIndex = -1
    this.#items = []
  }

  #up(index: number): void {
    const items = this.#items
    const item = items[index]
    while (index > 0) {
      const parentIndex = (index - 1) >> 1
      const parent = items[parentIndex]
      if (!before(item, parent)) break
      items[index] = parent
      parent.heapIndex = index
      index = parentIndex
    }
    items[index] = item
    item.heapIndex = index
  }

  #down(index: number): void {
    const items = this.#items
    const length = items.length
    const item = items[index]
    for (;;) {
      const left = 2 * index + 1
      if (left >= length) break
      const right = left + 1
      const child = right < length && before(items[right], items[left]) ? right : left
      if (!before(items[child], item)) break
      items[index] = items[child]
      items[index].heapIndex = index
      index = child
    }
    items[index] = item
    item.heapIndex = index
  }
}
