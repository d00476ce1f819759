//! Typed views of the headers a proxy reads, parsed on demand from the original bytes.
//! Each view borrows the message; nothing is copied.

mod misc;
mod name_addr;
mod via;

use std::fmt;

pub use misc::{CSeq, MediaType, Reason, Refresher, RetryAfter, SessionExpires, TokenIter};
pub use name_addr::{ContactValue, NameAddr};
pub use via::{MAGIC_COOKIE, Via, ViaIter};

use crate::name::HeaderName;

/// A header that is missing where required, repeated where it must be single, or malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderError {
    pub header: HeaderName,
    pub kind: HeaderErrorKind,
}

/// What is wrong with a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderErrorKind {
    Missing,
    Repeated,
    Malformed,
    OutOfRange,
}

impl HeaderError {
    pub fn new(header: HeaderName, kind: HeaderErrorKind) -> Self {
        HeaderError { header, kind }
    }

    /// A malformed-header error (for callers that validate a view further).
    pub fn malformed(header: HeaderName) -> Self {
        Self::new(header, HeaderErrorKind::Malformed)
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            HeaderErrorKind::Missing => "missing",
            HeaderErrorKind::Repeated => "repeated",
            HeaderErrorKind::Malformed => "malformed",
            HeaderErrorKind::OutOfRange => "out of range",
        };
        write!(f, "{} header {what}", self.header.as_str())
    }
}

impl std::error::Error for HeaderError {}
