//! The hub's timers: deadlines over a slab of entries, in a sorted run and a
//! binary heap.
//!
//! - **Insert** goes into a free slot of the slab. Its deadline goes at the
//!   end of the *run*, a queue of deadlines in the order they fall due, if
//!   it is no earlier than the last one there: `O(1)`, and the common case
//!   (timers of one duration, sleeps and timeouts alike, are set in the
//!   order they fall due). Any other goes into the heap, `O(log n)`.
//! - **Cancel** is `O(1)`: the slot is freed and its generation bumped. The
//!   run or heap entry stays behind and is skipped when it reaches the front
//!   (its generation no longer matches). When skipped entries outnumber live
//!   ones, the run and the heap are rebuilt from the live ones, so cancelled
//!   timers cost no more than twice the memory of live ones.
//! - **Expiry** pops due deadlines in order, the earlier of the run's front
//!   and the heap's top each time (popping the run's is `O(1)`); entries
//!   with equal deadlines fire in the order they were added (the sequence
//!   number breaks ties), so callbacks run FIFO.
//!
//! Hundreds of thousands of pending timers cost a 32-byte run or heap entry
//! and a slab slot each.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
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

/// Where a timer is due: (deadline, sequence, slot, generation), in that
/// order of precedence.
type Due = (Instant, u64, u32, u32);

/// Timers carrying a `T` each.
pub(crate) struct Timers<T> {
    /// Deadlines set in the order they fall due, earliest first.
    run: VecDeque<Due>,
    /// The others, smallest first.
    heap: BinaryHeap<Reverse<Due>>,
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    live: usize,
    sequence: u64,
}

impl<T> Timers<T> {
    pub(crate) fn new() -> Self {
        Timers {
            run: VecDeque::new(),
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            sequence: 0,
        }
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
        let due = (deadline, self.sequence, slot, generation);
        if self.run.back().is_none_or(|last| last.0 <= deadline) {
            self.run.push_back(due);
        } else {
            self.heap.push(Reverse(due));
        }
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
        let entries = self.run.len() + self.heap.len();
        if entries > 64 && entries > 2 * self.live {
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

    /// Drops the run and heap entries of cancelled timers.
    fn compact(&mut self) {
        let slots = &self.slots;
        let live = |&(_, _, slot, generation): &Due| {
            let cell = &slots[slot as usize];
            cell.generation == generation && cell.entry.is_some()
        };
        self.run.retain(live);
        self.heap.retain(|Reverse(due)| live(due));
    }

    /// Whether `due` names a pending timer.
    fn is_live(&self, &(_, _, slot, generation): &Due) -> bool {
        let cell = &self.slots[slot as usize];
        cell.generation == generation && cell.entry.is_some()
    }

    /// The earliest entry of the run and the heap (perhaps a cancelled
    /// timer's), and whether it is the run's.
    #[inline]
    fn first(&self) -> Option<(Due, bool)> {
        match (self.run.front(), self.heap.peek()) {
            (Some(run), Some(Reverse(heap))) if heap < run => Some((*heap, false)),
            (Some(run), _) => Some((*run, true)),
            (None, Some(Reverse(heap))) => Some((*heap, false)),
            (None, None) => None,
        }
    }

    /// Removes the entry [`first`](Self::first) returned.
    #[inline]
    fn pop_first(&mut self, from_run: bool) {
        if from_run {
            self.run.pop_front();
        } else {
            self.heap.pop();
        }
    }

    /// The earliest pending deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some((due, from_run)) = self.first() {
            if self.is_live(&due) {
                return Some(due.0);
            }
            self.pop_first(from_run);
        }
        None
    }

    /// Removes and returns one timer due at or before `now`, earliest (then
    /// oldest) first.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<T> {
        loop {
            let ((deadline, _, slot, generation), from_run) = self.first()?;
            if deadline > now {
                return None;
            }
            self.pop_first(from_run);
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
        let entries = timers.run.len() + timers.heap.len();
        assert!(entries <= 2 * 1_000 + 64, "the run and the heap hold {entries}");
        let mut count = 0;
        while timers.pop_due(t0 + Duration::from_secs(1)).is_some() {
            count += 1;
        }
        assert_eq!(count, 1_000);
    }

    #[test]
    fn deadlines_in_order_go_to_the_run_and_others_to_the_heap() {
        let mut timers = Timers::new();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        for (at, name) in [(10, "a"), (20, "c"), (20, "d"), (15, "b"), (30, "f"), (20, "e"), (5, "z")] {
            timers.insert(t0 + ms(at), name);
        }
        assert_eq!(timers.run.len(), 4, "10, 20, 20, 30: each no earlier than the last");
        assert_eq!(timers.heap.len(), 3, "15, 20 after 30, 5");
        assert_eq!(timers.next_deadline(), Some(t0 + ms(5)));
        let mut fired = Vec::new();
        while let Some(name) = timers.pop_due(t0 + ms(25)) {
            fired.push(name);
        }
        // Equal deadlines (20) fire in insertion order across the two.
        assert_eq!(fired, ["z", "a", "b", "c", "d", "e"]);
        assert_eq!(timers.pop_due(t0 + ms(30)), Some("f"));
        assert_eq!(timers.len(), 0);
    }

    #[test]
    fn mixed_inserts_and_cancellations_fire_as_a_sorted_list_would() {
        let mut timers = Timers::new();
        let t0 = Instant::now();
        let mut reference: Vec<(u64, u64)> = Vec::new(); // (deadline µs, sequence)
        let mut ids = Vec::new();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for sequence in 0..5_000_u64 {
            // Mostly ascending deadlines, some earlier ones, some repeats.
            let at = match next() % 4 {
                0 => next() % 1_000,
                _ => sequence / 2,
            };
            ids.push((timers.insert(t0 + Duration::from_micros(at), sequence), at));
            reference.push((at, sequence));
            if next() % 3 == 0 {
                let (id, at) = ids[(next() % ids.len() as u64) as usize];
                if let Some(cancelled) = timers.cancel(id) {
                    reference.retain(|&entry| entry != (at, cancelled));
                }
            }
        }
        reference.sort_unstable();
        assert_eq!(timers.len(), reference.len());
        let mut fired = Vec::new();
        while let Some(sequence) = timers.pop_due(t0 + Duration::from_secs(1)) {
            fired.push(sequence);
        }
        let expected: Vec<u64> = reference.iter().map(|&(_, sequence)| sequence).collect();
        assert_eq!(fired, expected);
    }
}
