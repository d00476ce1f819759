//! Admission of a new INVITE: the engine's stages in SPEC.md's order, each `Ok` or a
//! [`Reject`] (`domain::Reject`: the switch's one reply table). The stages that read only the
//! configuration snapshot (customer, status, number, dialing plan, routes, the per-carrier
//! decision) are `domain::routing`, shared with the route simulator; what needs the engine's
//! own state is here: the guards against strangers ([`security`]) and the limits
//! ([`limits`]).

pub(crate) mod limits;
pub(crate) mod security;
