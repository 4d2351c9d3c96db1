/**
 * MurmurHash3 (x86, 32-bit) over a string's UTF-16 code units, two per 32-bit block. Not the
 * reference byte stream, but the same mixing: fast, well spread, and identical in every process.
 */

const C1 = 0xcc9e2d51
const C2 = 0x1b873593

/** The 32-bit hash of `text` with `seed`, as an unsigned integer. */
export const murmur3 = (text: string, seed = 0): number => {
  let h = seed >>> 0
  const length = text.length
  const pairs = length & ~1
  for (let i = 0; i < pairs; i += 2) {
    let k = (text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16)) >>> 0
    k = Math.imul(k, C1)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, C2)
    h ^= k
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  if (pairs < length) {
    let k = text.charCodeAt(pairs)
    k = Math.imul(k, C1)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, C2)
    h ^= k
  }
  h ^= length * 2
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}
