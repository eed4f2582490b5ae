//! The hub's timers: a binary heap of deadlines over a slab of entries.
//!
//! - **Insert** is `O(log n)`: the entry goes into a free slot of the slab,
//!   and its deadline into the heap.
//! - **Cancel** is `O(1)`: the slot is freed and its generation bumped. The
//!   heap entry stays behind and is skipped when it reaches the top (its
//!   generation no longer matches). When skipped entries outnumber live ones,
//!   the heap is rebuilt from the live ones, so cancelled timers cost no more
//!   than twice the memory of live ones.
//! - **Expiry** pops due deadlines in order; entries with equal deadlines
//!   fire in the order they were added (the sequence number breaks ties), so
//!   callbacks run FIFO.
//!
//! Hundreds of thousands of pending timers cost a 24-byte heap entry and a
//! slab slot each.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Names a timer for [`Timers::cancel`]; stale once the timer fired or was
/// cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerId {
    slot: u32,
    generation: u32,
}

struct Slot<T> {
    generation: u32,
    entry: Option<T>,
}

/// Timers carrying a `T` each.
pub(crate) struct Timers<T> {
    /// (deadline, sequence, slot, generation), smallest first.
    heap: BinaryHeap<Reverse<(Instant, u64, u32, u32)>>,
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    live: usize,
    sequence: u64,
}

impl<T> Timers<T> {
    pub(crate) fn new() -> Self {
        Timers { heap: BinaryHeap::new(), slots: Vec::new(), free: Vec::new(), live: 0, sequence: 0 }
    }

    /// How many timers are pending.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Adds a timer that fires at `deadline` with `entry`.
    pub(crate) fn insert(&mut self, deadline: Instant, entry: T) -> TimerId {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot { generation: 0, entry: None });
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 timers")
            }
        };
        let cell = &mut self.slots[slot as usize];
        cell.entry = Some(entry);
        let generation = cell.generation;
        self.sequence += 1;
        self.heap.push(Reverse((deadline, self.sequence, slot, generation)));
        self.live += 1;
        TimerId { slot, generation }
    }

    /// Cancels a pending timer and returns its entry; `None` if it already
    /// fired or was cancelled.
    pub(crate) fn cancel(&mut self, id: TimerId) -> Option<T> {
        let cell = self.slots.get_mut(id.slot as usize)?;
        if cell.generation != id.generation {
            return None;
        }
        let entry = cell.entry.take()?;
        self.release(id.slot);
        if self.heap.len() > 64 && self.heap.len() > 2 * self.live {
            self.compact();
        }
        Some(entry)
    }

    fn release(&mut self, slot: u32) {
        let cell = &mut self.slots[slot as usize];
        cell.generation = cell.generation.wrapping_add(1);
        self.free.push(slot);
        self.live -= 1;
    }

    /// Drops the heap entries of cancelled timers.
    fn compact(&mut self) {
        let slots = &self.slots;
        self.heap.retain(|Reverse((_, _, slot, generation))| {
            let cell = &slots[*slot as usize];
            cell.generation == *generation && cell.entry.is_some()
        });
    }

    /// The earliest pending deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((deadline, _, slot, generation))) = self.heap.peek().copied() {
            let cell = &self.slots[slot as usize];
            if cell.generation == generation && cell.entry.is_some() {
                return Some(deadline);
            }
            self.heap.pop();
        }
        None
    }

    /// Removes and returns one timer due at or before `now`, earliest (then
    /// oldest) first.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<T> {
        loop {
            let Reverse((deadline, _, slot, generation)) = *self.heap.peek()?;
            if deadline > now {
                return None;
            }
            self.heap.pop();
            let cell = &mut self.slots[slot as usize];
            if cell.generation != generation {
                continue;
            }
            if let Some(entry) = cell.entry.take() {
                self.release(slot);
                return Some(entry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timers_fire_in_deadline_then_insertion_order() {
        let mut timers = Timers::new();
        let t0 = Instant::now();
        timers.insert(t0 + Duration::from_millis(20), "c");
        timers.insert(t0 + Duration::from_millis(10), "a");
        timers.insert(t0 + Duration::from_millis(10), "b");
        timers.insert(t0 + Duration::from_millis(30), "d");
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_millis(10)));
        let mut fired = Vec::new();
        while let Some(name) = timers.pop_due(t0 + Duration::from_millis(25)) {
            fired.push(name);
        }
        assert_eq!(fired, ["a", "b", "c"]);
        assert_eq!(timers.len(), 1);
    }

    #[test]
    fn cancelled_timers_never_fire_and_their_slots_are_reused() {
        let mut timers = Timers::new();
        let t0 = Instant::now();
        let a = timers.insert(t0, 1);
        let b = timers.insert(t0, 2);
        assert_eq!(timers.cancel(a), Some(1));
        assert_eq!(timers.cancel(a), None, "cancelling twice does nothing");
        let c = timers.insert(t0, 3);
        assert_eq!(c.slot, a.slot, "the slot is reused");
        assert_eq!(timers.cancel(a), None, "a stale id does not cancel the new timer");
        assert_eq!(timers.pop_due(t0), Some(2));
        assert_eq!(timers.pop_due(t0), Some(3));
        assert_eq!(timers.pop_due(t0), None);
        assert_eq!(timers.cancel(b), None, "a fired timer cannot be cancelled");
        assert_eq!(timers.len(), 0);
    }

    #[test]
    fn many_cancellations_keep_the_heap_small() {
        let mut timers = Timers::new();
        let t0 = Instant::now();
        let ids: Vec<_> = (0..100_000).map(|i| timers.insert(t0 + Duration::from_micros(i), i)).collect();
        for id in &ids[..99_000] {
            timers.cancel(*id);
        }
        assert_eq!(timers.len(), 1_000);
        assert!(timers.heap.len() <= 2 * 1_000 + 64, "heap holds {}", timers.heap.len());
        let mut count = 0;
        while timers.pop_due(t0 + Duration::from_secs(1)).is_some() {
            count += 1;
        }
        assert_eq!(count, 1_000);
    }
}
