//! The raw payload section of a frame: record bytes that travel next to the
//! postcard body instead of inside it (docs/replication.md, "Raw payload").
//!
//! Sending: a message is serialized inside [`collect`]; a value that owns
//! a segment file range (a partition entry's `Records::File`) hands the
//! range to [`push`] and serializes only its length. The transport then
//! writes the body and those ranges, in order, with `sendfile(2)` from the
//! segment files: the bytes never enter this process.
//!
//! Receiving: the body is deserialized inside [`with_payload`]; each value
//! serialized as a length takes that many bytes off the front of the
//! payload with [`take`] — a view of the one receive buffer, no copy. The
//! lengths must add up to the payload exactly: too short or too long is an
//! error (and the transport closes the connection).

use std::cell::RefCell;
use std::sync::Arc;

use bytes::BytesMut;

use crate::log::LogFile;

/// A byte range of a file that goes out in a frame's payload section.
#[derive(Clone)]
pub struct RawRange {
    /// The file (kept open while the range waits to be sent).
    pub file: Arc<dyn LogFile>,
    /// First byte.
    pub position: u64,
    /// Length in bytes.
    pub len: u64,
}

impl std::fmt::Debug for RawRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawRange({}+{})", self.position, self.len)
    }
}

thread_local! {
    static OUTGOING: RefCell<Option<Vec<RawRange>>> = const { RefCell::new(None) };
    static INCOMING: RefCell<Option<BytesMut>> = const { RefCell::new(None) };
    /// Why the last [`take`] failed (postcard drops custom error messages).
    static FAULT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f` (a serialization) and returns what it returned with the file
/// ranges [`push`]ed meanwhile, in order. Not reentrant.
pub fn collect<R>(f: impl FnOnce() -> R) -> (R, Vec<RawRange>) {
    OUTGOING.with(|o| *o.borrow_mut() = Some(Vec::new()));
    let r = f();
    let ranges = OUTGOING.with(|o| o.borrow_mut().take()).unwrap_or_default();
    (r, ranges)
}

/// Hands `range` to the enclosing [`collect`]: `false` (and nothing kept)
/// when there is none, in which case the caller serializes the bytes inline.
pub fn push(range: &RawRange) -> bool {
    OUTGOING.with(|o| match o.borrow_mut().as_mut() {
        Some(v) => {
            v.push(range.clone());
            true
        }
        None => false,
    })
}

/// Runs `f` (a deserialization) with `payload` available to [`take`]. An
/// error if `f` fails or leaves payload bytes unclaimed.
pub fn with_payload<R>(
    payload: BytesMut,
    f: impl FnOnce() -> Result<R, String>,
) -> Result<R, String> {
    INCOMING.with(|i| *i.borrow_mut() = Some(payload));
    FAULT.with(|f| f.borrow_mut().take());
    let r = f();
    let left = INCOMING
        .with(|i| i.borrow_mut().take())
        .map_or(0, |b| b.len());
    if let Some(fault) = FAULT.with(|f| f.borrow_mut().take()) {
        return Err(fault);
    }
    let r = r?;
    if left != 0 {
        return Err(format!(
            "payload section holds {left} bytes more than its entries"
        ));
    }
    Ok(r)
}

/// The next `len` bytes of the enclosing [`with_payload`]'s payload: a
/// view of the receive buffer, owned alone (mutable without a copy).
pub fn take(len: u64) -> Result<BytesMut, String> {
    let r = INCOMING.with(|i| {
        let mut i = i.borrow_mut();
        let Some(p) = i.as_mut() else {
            return Err("an entry refers to a payload section that is not there".into());
        };
        match usize::try_from(len) {
            Ok(n) if n <= p.len() => Ok(p.split_to(n)),
            _ => Err(format!(
                "an entry of {len} bytes overruns the payload section ({} bytes left)",
                p.len()
            )),
        }
    });
    if let Err(e) = &r {
        FAULT.with(|f| *f.borrow_mut() = Some(e.clone()));
    }
    r
}

/// The sum of `ranges`' lengths.
pub fn total_len(ranges: &[RawRange]) -> u64 {
    ranges.iter().map(|r| r.len).sum()
}

/// `ranges` with neighbours that continue each other in the same file
/// merged (consecutive entries of one segment become one `sendfile`).
pub fn merge(ranges: Vec<RawRange>) -> Vec<RawRange> {
    let mut out: Vec<RawRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        if r.len == 0 {
            continue;
        }
        if let Some(last) = out.last_mut() {
            if Arc::ptr_eq(&last.file, &r.file) && last.position + last.len == r.position {
                last.len += r.len;
                continue;
            }
        }
        out.push(r);
    }
    out
}
