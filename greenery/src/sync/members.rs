//! The methods a [`Group`](super::Group) and a [`Pool`](super::Pool) share:
//! membership, joining, killing and mapping, all by delegation to their
//! [`Tracker`](super::tracker::Tracker). One macro writes them for both, with
//! documentation and examples in each type's own words.

/// Writes the shared methods into `impl $ty`, whose `tracker` field is an
/// `Rc<Tracker>`. `$kind` names the type in prose ("group", "pool"), `$new`
/// makes one in the examples, and `$at_once` says how many items `map` and
/// its kin run at once.
macro_rules! member_methods {
    ($ty:ident, $kind:literal, $new:literal, $at_once:literal) => {
        impl $ty {
            /// How many members are running (spawned and not finished).
            pub fn len(&self) -> usize {
                self.tracker.len()
            }

            /// Whether no member is running.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            #[doc = concat!("Whether `handle`'s green thread is a member: it was spawned in this ", $kind)]
            /// (or added to it) and has not finished.
            pub fn contains<T>(&self, handle: &crate::JoinHandle<T>) -> bool {
                self.tracker.contains(handle.id())
            }

            #[doc = concat!("Blocks until the ", $kind, " has been empty at least once since the call")]
            /// (gevent's `join`): members spawned meanwhile may still be
            /// running when it returns. Called from a member, it waits for
            /// that member too: forever.
            ///
            /// # Errors
            ///
            #[doc = concat!("[`Deadlock`](crate::hub::Deadlock) if the ", $kind, " never could be empty.")]
            pub fn join(&self) -> Result<(), crate::hub::Deadlock> {
                self.tracker.join(None).map(|_| ())
            }

            /// [`join`](Self::join), waiting at most `timeout`; returns
            #[doc = concat!("whether the ", $kind, " was empty in time.")]
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("use greenery::sync::", stringify!($ty), ";")]
            ///
            #[doc = concat!("let members = ", $new, ";")]
            /// let _sleeper = members.spawn(|| greenery::sleep(Duration::from_secs(10)));
            /// assert_eq!(members.join_timeout(Duration::from_millis(5)), Ok(false));
            /// members.kill().unwrap();
            /// assert_eq!(members.join_timeout(Duration::ZERO), Ok(true));
            /// ```
            ///
            /// # Errors
            ///
            /// [`Deadlock`](crate::hub::Deadlock) if it never could be
            /// empty, nor the time pass.
            pub fn join_timeout(&self, timeout: std::time::Duration) -> Result<bool, crate::hub::Deadlock> {
                self.tracker.join(super::tracker::deadline(timeout))
            }

            /// Kills every member and waits until they are dead (gevent's
            /// `kill`); members that join meanwhile are killed too. Called
            /// from a member, it kills that member last, once the others are
            /// dead: it unwinds the caller and does not return.
            ///
            /// # Errors
            ///
            /// [`Deadlock`](crate::hub::Deadlock) if a member cannot die
            /// (see [`JoinHandle::kill`](crate::JoinHandle::kill)).
            pub fn kill(&self) -> Result<(), crate::hub::Deadlock> {
                self.tracker.kill()
            }

            /// Asks for every member to be killed, and returns at once
            /// (gevent's `kill(block=False)`); see
            /// [`JoinHandle::kill_async`](crate::JoinHandle::kill_async).
            /// Called from a member, it kills that member last: it unwinds
            /// the caller.
            pub fn kill_async(&self) {
                self.tracker.kill_async();
            }

            #[doc = concat!("Applies `f` to every item, each in a member, ", $at_once, ",")]
            /// and returns the results in the order of the items
            /// ([`imap`](Self::imap), collected).
            ///
            /// ```
            #[doc = concat!("use greenery::sync::", stringify!($ty), ";")]
            ///
            #[doc = concat!("let members = ", $new, ";")]
            /// let results = members.map(|n: u32| if n == 2 { panic!("two") } else { n * 10 }, 0..5);
            /// assert_eq!(results.len(), 5);
            /// assert_eq!(*results[1].as_ref().unwrap(), 10);
            /// assert!(results[2].as_ref().unwrap_err().is_panic()); // the others carry on
            /// assert_eq!(*results[4].as_ref().unwrap(), 40);
            /// ```
            pub fn map<A, T, F, I>(&self, f: F, items: I) -> Vec<Result<T, crate::JoinError>>
            where
                F: Fn(A) -> T + 'static,
                I: IntoIterator<Item = A>,
                A: 'static,
                T: 'static,
            {
                self.imap(f, items).collect()
            }

            #[doc = concat!("Applies `f` to every item, each in a member, ", $at_once, ", lazily:")]
            /// see [`Imap`](super::Imap). The results come in the order of
            /// the items; a slow item holds up the results behind it, but
            /// not the work.
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("use greenery::sync::", stringify!($ty), ";")]
            ///
            #[doc = concat!("let members = ", $new, ";")]
            /// let slow_first = members.imap(
            ///     |ms: u64| {
            ///         greenery::sleep(Duration::from_millis(ms));
            ///         ms
            ///     },
            ///     [30, 1, 2, 3],
            /// );
            /// let values: Vec<u64> = slow_first.map(Result::unwrap).collect();
            /// assert_eq!(values, [30, 1, 2, 3]);
            /// ```
            pub fn imap<A, T, F, I>(&self, f: F, items: I) -> super::Imap<T, F, I::IntoIter>
            where
                F: Fn(A) -> T + 'static,
                I: IntoIterator<Item = A>,
                A: 'static,
                T: 'static,
            {
                super::Imap::new(self.tracker.clone(), f, items.into_iter())
            }

            /// [`imap`](Self::imap) with the results in the order the items
            /// finished: see [`ImapUnordered`](super::ImapUnordered).
            ///
            /// ```
            #[doc = concat!("use greenery::sync::", stringify!($ty), ";")]
            ///
            #[doc = concat!("let members = ", $new, ";")]
            /// // Each item yields to the hub `turns` times before it returns.
            /// let fastest_first = members.imap_unordered(
            ///     |turns: u32| {
            ///         (0..turns).for_each(|_| greenery::yield_now());
            ///         turns
            ///     },
            ///     [3, 1, 2],
            /// );
            /// let values: Vec<u32> = fastest_first.map(Result::unwrap).collect();
            /// assert_eq!(values, [1, 2, 3]);
            /// ```
            pub fn imap_unordered<A, T, F, I>(
                &self,
                f: F,
                items: I,
            ) -> super::ImapUnordered<T, F, I::IntoIter>
            where
                F: Fn(A) -> T + 'static,
                I: IntoIterator<Item = A>,
                A: 'static,
                T: 'static,
            {
                super::ImapUnordered::new(self.tracker.clone(), f, items.into_iter())
            }
        }
    };
}

pub(super) use member_methods;
