//! Where the builders of a split protocol block put their scopes and passes: one vector.
//!
//! The builder of the second half of the servers used to make vectors of its own, appended to
//! the first builder's at the join. On a 5,000-server config that held 4.3 MB of scopes and
//! passes twice at `config lint`'s peak, and copied them on one thread while the other waited.
//! Now the first builder's vector lends the second a part of its spare capacity, from the
//! index the first half's count ([`super::count`]) says its own items end at, as large as a
//! bound made from that count. The second builder writes there and numbers its scopes and
//! passes from where that part starts, so the join only sets the vector's length. Should the
//! count be off or the bound too small (tests make both happen), what did not fit goes to a
//! side vector, and the join falls back to moving and renumbering.

use std::mem::MaybeUninit;

/// Where a builder puts its scopes (or its passes).
pub(super) enum Out<'v, T> {
    /// Its model's own vector, up to `limit` (the start of a part lent to another builder);
    /// past it, `overflow`.
    Own { limit: usize, overflow: Vec<T> },
    /// A part of another builder's vector.
    Lent(Lent<'v, T>),
}

impl<T> Default for Out<'_, T> {
    fn default() -> Self {
        Out::Own {
            limit: usize::MAX,
            overflow: Vec::new(),
        }
    }
}

impl<T> Out<'_, T> {
    /// The index the next item will have, `own` being the model's vector.
    pub(super) fn next_index(&self, own: &[T]) -> usize {
        match self {
            Out::Own { overflow, .. } => own.len() + overflow.len(),
            Out::Lent(lent) => lent.base + lent.written + lent.overflow.len(),
        }
    }

    /// Adds `item`, at [`Out::next_index`].
    pub(super) fn push(&mut self, own: &mut Vec<T>, item: T) {
        match self {
            Out::Own { limit, overflow } => {
                if own.len() < *limit && overflow.is_empty() {
                    own.push(item);
                } else {
                    overflow.push(item);
                }
            }
            Out::Lent(lent) => match lent.slots.get_mut(lent.written) {
                Some(slot) if lent.overflow.is_empty() => {
                    slot.write(item);
                    lent.written += 1;
                }
                _ => lent.overflow.push(item),
            },
        }
    }
}

/// The part of a vector's spare capacity one builder fills for another.
pub(super) struct Lent<'v, T> {
    /// The index of its first slot in the vector.
    base: usize,
    slots: &'v mut [MaybeUninit<T>],
    /// Slots written, from the first.
    written: usize,
    /// What came after the slots were full.
    overflow: Vec<T>,
}

impl<'v, T> Lent<'v, T> {
    /// Lends `len` slots of `vec`'s spare capacity from index `base`, reserving them first.
    ///
    /// # Safety
    /// Until the [`Lent`] is given back ([`give_back`]), `vec` must not be read past `base`,
    /// grow to `base` or beyond, reallocate or be dropped: the [`Lent`] writes there,
    /// possibly on another thread. [`Out::Own`] with `limit: base` keeps the pushes of the
    /// builder that owns `vec` below `base`.
    pub(super) unsafe fn lend(vec: &mut Vec<T>, base: usize, len: usize) -> Lent<'v, T> {
        let base = base.max(vec.len());
        vec.reserve((base + len) - vec.len());
        // SAFETY: `reserve` made `base + len` slots of capacity, so the range is inside the
        // allocation and past the initialized elements. No reference to these slots exists:
        // `as_mut_ptr` does not make one to the buffer (its documentation guarantees this), and
        // the caller keeps `vec` from touching them until `give_back`.
        let slots = unsafe {
            std::slice::from_raw_parts_mut(vec.as_mut_ptr().add(base).cast::<MaybeUninit<T>>(), len)
        };
        Lent {
            base,
            slots,
            written: 0,
            overflow: Vec::new(),
        }
    }

    /// The index the lent part's items are numbered from.
    pub(super) fn base(&self) -> usize {
        self.base
    }
}

/// Where the second builder's items are in the vector after [`give_back`], and how far their
/// numbers are off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Placed {
    /// The index of the first of them.
    pub(super) start: usize,
    /// What to add to the indexes (of this kind of item) that the second builder gave.
    pub(super) shift: isize,
}

/// Ends a split: `own` is how the vector's builder put its items into `vec`, `theirs` how the
/// other builder did (into a part of `vec` lent to it).
pub(super) fn give_back<T>(vec: &mut Vec<T>, own: Out<'_, T>, theirs: Out<'_, T>) -> Placed {
    let own_overflow = match own {
        Out::Own { overflow, .. } => overflow,
        Out::Lent(lent) => lent.overflow,
    };
    let (base, slots, written, their_overflow) = match theirs {
        Out::Lent(l) => (l.base, l.slots, l.written, l.overflow),
        Out::Own { overflow, .. } => (vec.len(), Default::default(), 0, overflow),
    };
    if vec.len() == base && own_overflow.is_empty() && their_overflow.is_empty() {
        // SAFETY: the `written` slots from `base` (= `vec.len()`) were initialized with
        // `MaybeUninit::write`, and nothing has moved or dropped them since. They are within
        // the capacity `lend` reserved, which `vec` has not given up (see `Lent::lend`).
        unsafe { vec.set_len(base + written) };
        return Placed {
            start: base,
            shift: 0,
        };
    }
    // Counted wrong: the lent part's items move out, in order, and come after the owner's.
    let mut moved = Vec::with_capacity(written + their_overflow.len());
    for slot in &slots[..written] {
        // SAFETY: each of the first `written` slots was initialized by `MaybeUninit::write`
        // and is read once here; `vec`'s length stays below them, so it never drops them.
        moved.push(unsafe { slot.assume_init_read() });
    }
    moved.extend(their_overflow);
    vec.extend(own_overflow);
    let start = vec.len();
    vec.extend(moved);
    Placed {
        start,
        shift: start as isize - base as isize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes `mine` items through an `Own` limited at `limit` and `theirs` through a part lent
    /// from `limit` with room for `room` (the vector holds one item before), gives the part
    /// back, and returns the vector and where the lent part's items are.
    fn run(mine: usize, limit: usize, theirs: usize, room: usize) -> (Vec<String>, Placed) {
        let mut vec = vec!["start".to_string()];
        let limit = 1 + limit;
        // SAFETY: `vec` is only pushed to through `own`, limited at `limit`, until the join.
        let mut lent = Out::Lent(unsafe { Lent::lend(&mut vec, limit, room) });
        let mut own = Out::Own {
            limit,
            overflow: Vec::new(),
        };
        let mut none = Vec::new();
        for i in 0..theirs {
            assert_eq!(lent.next_index(&none), limit + i);
            lent.push(&mut none, format!("theirs {i}"));
        }
        for i in 0..mine {
            assert_eq!(own.next_index(&vec), 1 + i);
            own.push(&mut vec, format!("mine {i}"));
        }
        let placed = give_back(&mut vec, own, lent);
        (vec, placed)
    }

    #[test]
    fn parts_counted_right_end_back_to_back() {
        let (vec, placed) = run(2, 2, 3, 3);
        assert_eq!(
            vec,
            ["start", "mine 0", "mine 1", "theirs 0", "theirs 1", "theirs 2"]
        );
        assert_eq!(placed, Placed { start: 3, shift: 0 });
        // Fewer than counted in the lent part only leaves capacity unused.
        let (vec, placed) = run(2, 2, 1, 3);
        assert_eq!((vec.len(), placed), (4, Placed { start: 3, shift: 0 }));
    }

    #[test]
    fn parts_counted_wrong_are_moved_and_renumbered() {
        let theirs = ["theirs 0", "theirs 1"];
        // The owner made more than its part: its overflow, then the lent part's items.
        let (vec, placed) = run(3, 2, 2, 2);
        assert_eq!(vec[..4], ["start", "mine 0", "mine 1", "mine 2"]);
        assert_eq!(vec[4..], theirs);
        assert_eq!(placed, Placed { start: 4, shift: 1 });
        // Fewer: a gap the lent part's items cannot stay behind.
        let (vec, placed) = run(1, 2, 2, 2);
        assert_eq!(vec[..2], ["start", "mine 0"]);
        assert_eq!(vec[2..], theirs);
        assert_eq!(
            placed,
            Placed {
                start: 2,
                shift: -1
            }
        );
        // The lent part overflowed.
        let (vec, placed) = run(2, 2, 3, 1);
        assert_eq!(vec[3..], ["theirs 0", "theirs 1", "theirs 2"]);
        assert_eq!(placed, Placed { start: 3, shift: 0 });
    }
}
