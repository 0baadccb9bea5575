/**
 * A bounded cache with least-recently-used eviction approximated by the CLOCK / second-chance scheme: a hit only
 * sets a flag, and eviction walks from the eldest entry, giving flagged entries one more round. A true LRU on a
 * Map (delete + set on every hit) is slow because of the Map's tombstone rehashing; this is a flag write
 * (docs/performance.md, "PostgreSQL").
 */
interface Slot<V> {
  readonly value: V;
  recent: boolean;
}

export class LruCache<K, V> {
  private readonly entries = new Map<K, Slot<V>>();

  constructor(private readonly capacity: number) {}

  get(key: K): V | undefined {
    const slot = this.entries.get(key);
    if (slot === undefined) return undefined;
    slot.recent = true;
    return slot.value;
  }

  set(key: K, value: V): void {
    if (this.capacity <= 0) return;
    this.entries.delete(key);
    while (this.entries.size >= this.capacity) this.evictOne();
    this.entries.set(key, { value, recent: false });
  }

  private evictOne(): void {
    for (const [key, slot] of this.entries) {
      this.entries.delete(key);
      if (!slot.recent) return;
      slot.recent = false;
      this.entries.set(key, slot); // second chance: back to the young end
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
