//! # sip-transaction
//!
//! Sans-io RFC 3261 §17 transactions for a stateful proxy, with the RFC 6026 `Accepted`
//! states: no sockets, no clock reads, no async runtime, no threads.
//!
//! [`Transactions`] owns every client and server transaction. The caller feeds it messages
//! ([`Transactions::receive_request`], [`Transactions::receive_response`]), the TU's
//! decisions ([`Transactions::respond`], [`Transactions::send_request`]) and time
//! ([`Transactions::handle_timeout`]), always passing `now` explicitly, then drains
//! [`Transactions::poll_transmit`], [`Transactions::poll_event`] and sleeps until
//! [`Transactions::poll_timeout`].
//!
//! Modules: [`config`] (T1/T2/T4 and the derived timers), [`key`] (§17.1.3 and §17.2.3
//! matching), `client` and `server` (the four state machines), `table` (the manager), `io`
//! (output queues), `state` (the RFC state names a caller can observe) and `timer` ([`Timer`] and retransmission intervals).

mod client;
pub mod config;
mod io;
pub mod key;
mod server;
mod state;
mod table;
mod timer;

use bytes::Bytes;
use sip_message::Message;
use sip_message::headers::HeaderError;

pub use config::Config;
pub use key::{ClientKey, ServerKey};
pub use state::{
    ClientInviteState, ClientNonInviteState, ServerInviteState, ServerNonInviteState, State,
};
pub use table::Transactions;
pub use timer::Timer;

/// Identifies a client transaction for as long as it is in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTxnId(pub(crate) u64);

/// Identifies a server transaction for as long as it is in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxnId(pub(crate) u64);

/// Either kind of transaction id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnId {
    /// A client transaction.
    Client(ClientTxnId),
    /// A server transaction.
    Server(ServerTxnId),
}

/// A datagram or stream write the caller must perform.
#[derive(Debug, Clone)]
pub struct Transmit<A> {
    /// The transaction that sends it (report a failure with [`Transactions::transport_error`]).
    pub id: TxnId,
    /// Where to send it: the address given to `send_request` or `receive_request`.
    pub to: A,
    /// The bytes to send.
    pub payload: Bytes,
}

/// Something the TU must learn about.
#[derive(Debug, Clone)]
pub enum Event {
    /// A response for a client transaction, once per distinct response (2xx retransmissions
    /// in `Accepted` included: they are end to end).
    Response {
        /// The client transaction.
        id: ClientTxnId,
        /// The response.
        msg: Message,
    },
    /// Timer B or F (client: no final response, fail over) or H (server: no ACK came).
    Timeout {
        /// The transaction that timed out.
        id: TxnId,
        /// Which timer fired.
        timer: Timer,
    },
    /// The caller reported a transport error (§17.1.4, §17.2.4).
    TransportError {
        /// The failed transaction.
        id: TxnId,
    },
    /// The transaction reached `Terminated` and was removed from the table.
    Terminated {
        /// The removed transaction.
        id: TxnId,
    },
}

/// What [`Transactions::receive_request`] did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// A new server transaction: the TU decides what to answer.
    New(ServerTxnId),
    /// A retransmission, absorbed; a response to resend, if any, was queued.
    Retransmission,
    /// The ACK of a non-2xx final response (or its retransmission), absorbed.
    AckAbsorbed,
    /// An ACK no transaction absorbs (normally the end-to-end ACK of a 2xx): the proxy
    /// forwards it itself.
    StrayAck,
    /// A new CANCEL server transaction and the INVITE server transaction it matches, if any.
    Cancel {
        /// The INVITE server transaction the CANCEL matches.
        invite: Option<ServerTxnId>,
        /// The CANCEL's own non-INVITE server transaction.
        cancel: ServerTxnId,
    },
}

/// What [`Transactions::receive_response`] did with a response.
#[derive(Debug, Clone)]
pub enum ResponseOutcome {
    /// It matched a client transaction and an [`Event::Response`] was queued.
    Matched(ClientTxnId),
    /// It matched a client transaction, which absorbed it (a retransmission).
    Absorbed,
    /// It matches no transaction (a proxy forwards a stray 2xx statelessly).
    Stray(Message),
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// A header the transaction key needs is missing or malformed.
    Header(HeaderError),
    /// The top Via of a request to send has no branch.
    NoBranch,
    /// A request was expected.
    NotARequest,
    /// The bytes given to `respond` are not a response.
    NotAResponse,
    /// ACK opens no client transaction (§17.1.1.3: the TU sends the ACK of a 2xx).
    AckHasNoTransaction,
    /// A client transaction with this branch and method already exists.
    DuplicateKey,
    /// The transaction is not (or no longer) in the table.
    UnknownTransaction,
    /// A final response was already sent (only more 2xx may follow, on INVITE).
    FinalAlreadySent,
}

impl From<HeaderError> for Error {
    fn from(e: HeaderError) -> Self {
        Error::Header(e)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Header(e) => write!(f, "{e}"),
            Error::NoBranch => f.write_str("top Via has no branch"),
            Error::NotARequest => f.write_str("not a request"),
            Error::NotAResponse => f.write_str("not a response"),
            Error::AckHasNoTransaction => f.write_str("ACK opens no client transaction"),
            Error::DuplicateKey => f.write_str("a client transaction with this key exists"),
            Error::UnknownTransaction => f.write_str("no such transaction"),
            Error::FinalAlreadySent => f.write_str("a final response was already sent"),
        }
    }
}

impl std::error::Error for Error {}
