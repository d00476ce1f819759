//! # sip-message
//!
//! The SIP message layer of vts, sans-io: no sockets, no clock, no async runtime.
//!
//! - [`parse_datagram`] / [`parse_stream_message`] make one pass over the bytes and build an
//!   index of header lines (name → byte ranges) over the original buffer ([`Message`]). No
//!   header is copied and none is parsed until asked.
//! - [`headers`] has the typed views a proxy reads (Via, From, To, Call-ID, CSeq, Route,
//!   Record-Route, Contact, Max-Forwards, ...), parsed on demand; [`uri`] parses SIP, SIPS and
//!   tel URIs.
//! - [`edit`] records byte-range edits for forwarding (Via, Record-Route, Route,
//!   Request-URI, To/From, Max-Forwards, body) and writes the result; untouched bytes go out
//!   byte for byte.
//! - [`framing`] cuts messages out of a TCP stream; [`sanity`] runs the proxy's checks and
//!   returns a typed [`sanity::Reject`]; [`build`] writes responses, ACK and CANCEL.
//!
//! Start reading at [`parse_datagram`], then [`Message`].

pub mod build;
pub mod edit;
pub mod framing;
pub mod headers;
mod message;
mod method;
mod name;
mod params;
mod parse;
pub mod sanity;
mod scan;
pub mod uri;

pub use message::{Header, Headers, Message, RequestLine, Span, StartLine, StatusLine};
pub use method::Method;
pub use name::HeaderName;
pub use params::{ParamIter, Params};
pub use parse::{ParseError, ParseErrorKind, parse_datagram, parse_stream_message};
