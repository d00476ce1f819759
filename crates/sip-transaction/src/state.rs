//! The states a caller can observe ([`crate::Transactions::state`]), named after RFC 3261
//! §17 and RFC 6026. The state machines keep richer private enums whose variants carry each
//! state's data; these are their names only.

/// The public state of a transaction, named after the RFC 3261 / RFC 6026 states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// A client INVITE transaction (§17.1.1).
    ClientInvite(ClientInviteState),
    /// A client non-INVITE transaction (§17.1.2).
    ClientNonInvite(ClientNonInviteState),
    /// A server INVITE transaction (§17.2.1).
    ServerInvite(ServerInviteState),
    /// A server non-INVITE transaction (§17.2.2).
    ServerNonInvite(ServerNonInviteState),
}

/// The states of a client INVITE transaction (§17.1.1.2, RFC 6026 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    /// INVITE sent, nothing heard yet.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A 3xx–6xx arrived and was ACKed; absorbing its retransmissions.
    Completed,
    /// A 2xx arrived (RFC 6026); further 2xx go to the TU.
    Accepted,
    /// Done; the transaction leaves the table.
    Terminated,
}

/// The states of a client non-INVITE transaction (§17.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNonInviteState {
    /// Request sent, nothing heard yet.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived; absorbing its retransmissions.
    Completed,
    /// Done; the transaction leaves the table.
    Terminated,
}

/// The states of a server INVITE transaction (§17.2.1, RFC 6026 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    /// INVITE received; provisional responses may be sent.
    Proceeding,
    /// A 3xx–6xx was sent; waiting for the ACK.
    Completed,
    /// The ACK arrived; absorbing its retransmissions.
    Confirmed,
    /// A 2xx was sent (RFC 6026); more 2xx may follow.
    Accepted,
    /// Done; the transaction leaves the table.
    Terminated,
}

/// The states of a server non-INVITE transaction (§17.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerNonInviteState {
    /// Request received, nothing sent.
    Trying,
    /// A provisional response was sent.
    Proceeding,
    /// A final response was sent; answering request retransmissions with it.
    Completed,
    /// Done; the transaction leaves the table.
    Terminated,
}
