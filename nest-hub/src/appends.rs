//! Readers waiting for an in-process topic's next append: each waiting reader's waker in a slot
//! of one list per topic, taken whole by the append that wakes them.
//!
//! A `tokio::sync::Notify` does the same with a waiter node per reader, which must stay pinned
//! while it waits: a subscriber kept one boxed for its stream's life (a 64-byte block per idle
//! subscriber). Here a waiting reader costs its slot in the topic's list (16 bytes) and its
//! `Place` (12 bytes, inline).
//!
//! ```
//! use std::future::poll_fn;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::task::Poll;
//! use nest_hub::Appends;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let appends = std::sync::Arc::new(Appends::new());
//! let head = std::sync::Arc::new(AtomicU64::new(0));
//! let (a, h) = (appends.clone(), head.clone());
//! let writer = tokio::spawn(async move {
//!     h.store(1, Ordering::Release);
//!     a.notify();
//! });
//! // A reader: register, then look (an append between the two is not missed).
//! let mut wait = appends.wait();
//! let seen = poll_fn(|cx| {
//!     wait.poll_with(cx, || Some(head.load(Ordering::Acquire)).filter(|&n| n > 0))
//! })
//! .await;
//! assert_eq!(seen, 1);
//! writer.await.unwrap();
//! # });
//! ```

use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// The readers waiting for a topic's next append (see
/// [`BackendTopic::appended`](crate::BackendTopic::appended)): an in-process backend calls
/// [`notify`](Self::notify) after each append, and the hub's subscribers wait here without a
/// future or a node of their own.
///
/// Its list holds one slot per waiting reader (16 bytes; the list is taken whole at each
/// append, and the one the append before emptied takes its place); a reader that goes away
/// frees its slot for the next (a stream of readers on a quiet topic does not grow it).
#[derive(Debug, Default)]
pub struct Appends {
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    wakers: Vec<Option<Waker>>,
    /// Slots of `wakers` whose readers went away, reused first.
    free: Vec<usize>,
    /// The list the last append woke, empty, kept for the next round.
    spare: Vec<Option<Waker>>,
    /// How many times the list was taken (a `u64`: it never wraps, so a reader's place from an
    /// earlier round is never taken for one of this round).
    round: u64,
}

/// Where one reader waits: the round of the list it registered in, and its slot there.
///
/// 12 bytes, aligned to 4, so the 4 after it in a subscriber's cursor are not padding (a slot
/// is a `u32`: 4 billion readers waiting on one topic at once would be 64 GiB of slots).
#[derive(Debug, Clone, Copy)]
#[repr(C, packed(4))]
pub(crate) struct Place {
    round: u64,
    slot: u32,
}

impl Place {
    /// Not registered.
    pub(crate) const NONE: Place = Place {
        round: 0,
        slot: u32::MAX,
    };

    /// The slot, unless not registered.
    fn slot(self) -> Option<usize> {
        (self.slot != u32::MAX).then_some(self.slot as usize)
    }
}

impl Appends {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes every reader waiting now (call it after each append, outside the append's lock).
    /// The wakers are woken after the list's lock is released.
    pub fn notify(&self) {
        let mut wakers = {
            let mut slots = self.lock();
            if slots.wakers.is_empty() {
                return;
            }
            slots.round += 1;
            slots.free.clear();
            // The next round's list is the one the last append emptied (no allocation per
            // append once both have grown): the readers woken register there again.
            let next = std::mem::take(&mut slots.spare);
            std::mem::replace(&mut slots.wakers, next)
        };
        for waker in wakers.drain(..).flatten() {
            waker.wake();
        }
        let mut slots = self.lock();
        if slots.spare.capacity() < wakers.capacity() {
            slots.spare = wakers;
        }
    }

    /// A wait of one reader, which leaves the list when dropped (the hub's subscribers keep
    /// their place in their cursor instead, without a borrow of the list).
    pub fn wait(&self) -> Wait<'_> {
        Wait {
            appends: self,
            place: Place::NONE,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts `waker` at `place`: `true` when the reader was still registered from an earlier
    /// call (no append since, so nothing new since the read that followed that registration; its
    /// waker is replaced if it changed), `false` when it registered now (it must look again).
    pub(crate) fn register(&self, place: &mut Place, waker: &Waker) -> bool {
        let mut slots = self.lock();
        let registered = place.slot().filter(|_| place.round == slots.round);
        if let Some(at) = registered {
            if let Some(slot) = slots.wakers.get_mut(at) {
                match slot {
                    Some(old) if old.will_wake(waker) => {}
                    _ => *slot = Some(waker.clone()),
                }
                return true;
            }
        }
        let round = slots.round;
        let slot = match slots.free.pop() {
            Some(slot) => {
                slots.wakers[slot] = Some(waker.clone());
                slot
            }
            None => {
                slots.wakers.push(Some(waker.clone()));
                slots.wakers.len() - 1
            }
        };
        // Past `u32::MAX - 1` slots the reader is not placed (it registers again next time).
        let slot = u32::try_from(slot).unwrap_or(u32::MAX);
        *place = Place { round, slot };
        false
    }

    /// Leaves the list (a reader that goes away while registered).
    pub(crate) fn cancel(&self, place: &mut Place) {
        let Some(at) = place.slot() else {
            return;
        };
        let mut slots = self.lock();
        if place.round == slots.round {
            if let Some(slot) = slots.wakers.get_mut(at) {
                *slot = None;
                slots.free.push(at);
            }
        }
        *place = Place::NONE;
    }

    /// `read`'s answer, or `Pending` until the next append wakes `cx`: registers, then reads,
    /// so an append between the caller's last read and the registration is not missed.
    pub(crate) fn poll_read<T>(
        &self,
        place: &mut Place,
        cx: &mut Context<'_>,
        read: impl FnOnce() -> Option<T>,
    ) -> Poll<T> {
        if self.register(place, cx.waker()) {
            return Poll::Pending;
        }
        match read() {
            Some(value) => Poll::Ready(value),
            None => Poll::Pending,
        }
    }
}

/// One reader's wait on [`Appends`] ([`Appends::wait`]); it leaves the list when dropped.
#[derive(Debug)]
pub struct Wait<'a> {
    appends: &'a Appends,
    place: Place,
}

impl Wait<'_> {
    /// `read`'s answer, or `Pending` until the next append wakes `cx`. Call `read` yourself
    /// first when a read is cheap: a reader still registered since its last call is not asked
    /// to read again until an append.
    pub fn poll_with<T>(
        &mut self,
        cx: &mut Context<'_>,
        read: impl FnOnce() -> Option<T>,
    ) -> Poll<T> {
        self.appends.poll_read(&mut self.place, cx, read)
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        self.appends.cancel(&mut self.place);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nest_core::test_util::counting_waker;

    #[test]
    fn a_registered_reader_is_woken_once_by_the_next_append() {
        let appends = Appends::new();
        let (count, waker) = counting_waker();
        let mut place = Place::NONE;
        assert!(!appends.register(&mut place, &waker), "registers now");
        assert!(appends.register(&mut place, &waker), "still registered");
        appends.notify();
        assert_eq!(count.get(), 1);
        appends.notify();
        assert_eq!(count.get(), 1, "a woken reader is no longer listed");
        assert!(!appends.register(&mut place, &waker), "registers again");
        appends.notify();
        assert_eq!(count.get(), 2);
    }

    #[test]
    fn a_woken_reader_takes_a_slot_of_the_new_round_not_its_old_one() {
        let appends = Appends::new();
        let (a_count, a) = counting_waker();
        let (b_count, b) = counting_waker();
        let (mut a_place, mut b_place) = (Place::NONE, Place::NONE);
        appends.register(&mut a_place, &a);
        appends.notify();
        // The next round: B takes slot 0, the slot A had.
        assert!(!appends.register(&mut b_place, &b));
        assert!(!appends.register(&mut a_place, &a), "A registers again");
        appends.notify();
        assert_eq!((a_count.get(), b_count.get()), (2, 1), "both woken");
    }

    /// Two lists take turns: once both have grown, an append allocates nothing.
    #[test]
    fn appends_reuse_the_list_the_last_one_emptied() {
        let appends = Appends::new();
        let readers: Vec<_> = (0..100).map(|_| counting_waker()).collect();
        let mut places = vec![Place::NONE; readers.len()];
        let mut lists = Vec::new();
        for _ in 0..4 {
            for ((_, waker), place) in readers.iter().zip(&mut places) {
                appends.register(place, waker);
            }
            lists.push(appends.lock().wakers.as_ptr());
            appends.notify();
        }
        assert!(readers.iter().all(|(count, _)| count.get() == 4));
        assert_eq!(
            (lists[0], lists[1]),
            (lists[2], lists[3]),
            "the same two lists"
        );
        assert_ne!(lists[0], lists[1]);
    }

    #[test]
    fn a_changed_waker_replaces_the_one_in_the_slot() {
        let appends = Appends::new();
        let (first, waker) = counting_waker();
        let (second, other) = counting_waker();
        let mut place = Place::NONE;
        appends.register(&mut place, &waker);
        assert!(appends.register(&mut place, &other));
        appends.notify();
        assert_eq!((first.get(), second.get()), (0, 1));
    }

    #[test]
    fn readers_that_leave_free_their_slots_for_the_next() {
        let appends = Appends::new();
        let (count, waker) = counting_waker();
        let mut stays = Place::NONE;
        appends.register(&mut stays, &waker);
        for _ in 0..1_000 {
            let (_, passing) = counting_waker();
            let mut place = Place::NONE;
            appends.register(&mut place, &passing);
            appends.cancel(&mut place);
        }
        assert_eq!(
            appends.lock().wakers.len(),
            2,
            "one slot reused a thousand times"
        );
        appends.notify();
        assert_eq!(count.get(), 1);
        // A place of an earlier round is not taken for a slot of this one.
        let (other, waker) = counting_waker();
        let mut now = Place::NONE;
        appends.register(&mut now, &waker);
        appends.cancel(&mut stays);
        appends.notify();
        assert_eq!(other.get(), 1, "its slot was not freed by a stale place");
    }

    #[test]
    fn a_wait_reads_after_registering_and_leaves_when_dropped() {
        let appends = Appends::new();
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut wait = appends.wait();
        assert_eq!(wait.poll_with(&mut cx, || None::<u8>), Poll::Pending);
        assert_eq!(
            wait.poll_with(&mut cx, || Some(1)),
            Poll::Pending,
            "registered and not woken: not asked to read"
        );
        appends.notify();
        assert_eq!(count.get(), 1);
        assert_eq!(wait.poll_with(&mut cx, || Some(2)), Poll::Ready(2));
        drop(wait);
        assert_eq!(appends.lock().free, [0], "its slot is free");
        appends.notify();
        assert_eq!(count.get(), 1);
    }
}
