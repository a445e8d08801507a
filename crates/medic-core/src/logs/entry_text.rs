//! The text of an example entry: a copy, or where to read it again.
//!
//! A summary keeps two example entries per (class, upstream) cell and reader thread: on a 1 GiB
//! error log with 7,400 cells, their copies were 10 of the scan's 26 MB of heap (heaptrack). In a
//! regular file the reader gives offsets ([`medic_parse::input::ChunkSink::chunk`]), so a summary
//! keeps where each example is and reads the few that survive the merge back at the end. A file
//! rewritten in between (logrotate's `copytruncate`) is caught by a hash of the text, and the
//! example says it was lost rather than show another entry's text.

use std::hash::BuildHasher;
use std::io;

/// An example entry's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryText {
    Kept(Box<[u8]>),
    /// `len` bytes at `offset` of the input, whose hash is `hash`; see [`EntryText::read_back`].
    At {
        offset: u64,
        len: u32,
        hash: u64,
    },
    /// The file no longer held the text when it was read back.
    Lost,
}

/// What an example says when its text could not be read back.
pub const LOST: &str = "(text not shown: the file changed after it was read)";

fn hash(text: &[u8]) -> u64 {
    // Fixed seed: the hash is compared within one run only, but a fixed one keeps runs alike.
    foldhash::fast::FixedState::with_seed(0x6e67_696e_782d_6d65).hash_one(text)
}

impl EntryText {
    /// The text, as an offset when the reader gave one.
    pub fn new(text: &[u8], offset: Option<u64>) -> EntryText {
        match offset {
            Some(offset) => EntryText::At {
                offset,
                len: text.len() as u32,
                hash: hash(text),
            },
            None => EntryText::Kept(text.into()),
        }
    }

    /// Replaces the text, reusing the copy's memory when the length is the same.
    pub fn set(&mut self, text: &[u8], offset: Option<u64>) {
        match self {
            EntryText::Kept(buf) if offset.is_none() && buf.len() == text.len() => {
                buf.copy_from_slice(text)
            }
            // Exactly the text's size: a buffer reused for texts of other lengths kept the
            // longest one's (heaptrack: 14 of 38 MB with amortized growth).
            _ => *self = EntryText::new(text, offset),
        }
    }

    /// The text; [`LOST`] when it could not be read back, and the same for an offset that was
    /// never read back (a summary reads its examples back before it is reported).
    pub fn bytes(&self) -> &[u8] {
        match self {
            EntryText::Kept(b) => b,
            EntryText::At { .. } | EntryText::Lost => LOST.as_bytes(),
        }
    }

    /// Reads an offset's text with `read_exact_at` (fill the buffer from that offset of the
    /// input). False when it is lost: the read failed or the bytes there are no longer the ones
    /// the scan saw.
    pub fn read_back(
        &mut self,
        read_exact_at: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>,
    ) -> bool {
        let EntryText::At {
            offset,
            len,
            hash: h,
        } = *self
        else {
            return true;
        };
        let mut buf = vec![0u8; len as usize].into_boxed_slice();
        let ok = read_exact_at(offset, &mut buf).is_ok() && hash(&buf) == h;
        *self = if ok {
            EntryText::Kept(buf)
        } else {
            EntryText::Lost
        };
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(file: &'static [u8]) -> impl FnMut(u64, &mut [u8]) -> io::Result<()> {
        move |at, buf| {
            let at = at as usize;
            let src = file
                .get(at..at + buf.len())
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            buf.copy_from_slice(src);
            Ok(())
        }
    }

    #[test]
    fn an_offset_is_read_back_when_the_file_still_holds_the_text() {
        let file = b"first line\nsecond line\n";
        let mut t = EntryText::new(b"second line", Some(11));
        assert_eq!(t.bytes(), LOST.as_bytes(), "not read back yet");
        assert!(t.read_back(&mut reader(file)));
        assert_eq!(t, EntryText::Kept(b"second line"[..].into()));
    }

    #[test]
    fn a_rewritten_or_truncated_file_loses_the_text_and_says_so() {
        let mut rewritten = EntryText::new(b"second line", Some(11));
        assert!(!rewritten.read_back(&mut reader(b"first line\nsecond LINE\n")));
        assert_eq!(rewritten.bytes(), LOST.as_bytes());
        let mut truncated = EntryText::new(b"second line", Some(11));
        assert!(!truncated.read_back(&mut reader(b"first line\n")));
        assert_eq!(truncated, EntryText::Lost);
    }

    #[test]
    fn a_copy_needs_no_reading_back() {
        let mut t = EntryText::new(b"kept", None);
        assert!(t.read_back(&mut |_, _| panic!("no read for a copy")));
        t.set(b"also", None);
        assert_eq!(t.bytes(), b"also");
        t.set(b"at an offset", Some(3));
        assert!(matches!(
            t,
            EntryText::At {
                offset: 3,
                len: 12,
                ..
            }
        ));
    }
}
