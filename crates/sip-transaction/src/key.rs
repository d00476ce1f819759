//! Transaction keys: which transaction a message belongs to. [`ClientKey`] follows RFC 3261
//! §17.1.3 (top-Via branch and CSeq method); [`ServerKey`] follows §17.2.3 (branch, sent-by
//! and method when the branch carries the magic cookie; the RFC 2543 rules otherwise).
//! Keys own their bytes so that they can live in a `HashMap`.

use sip_message::{Message, Method};

use crate::Error;

/// The key of a client transaction (§17.1.3): top-Via branch and CSeq method. A CANCEL's key
/// differs from its INVITE's by the method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    branch: Vec<u8>,
    method: Vec<u8>,
}

impl ClientKey {
    /// The key of a request we send or of a response to it.
    pub fn from_message(msg: &Message) -> Result<Self, Error> {
        let h = msg.headers();
        let via = h.top_via()?;
        let branch = via
            .branch()
            .filter(|b| !b.is_empty())
            .ok_or(Error::NoBranch)?;
        let cseq = h.cseq()?;
        Ok(ClientKey {
            branch: branch.to_vec(),
            method: cseq.method_raw.to_vec(),
        })
    }
}

/// The key of a server transaction (§17.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerKey {
    rules: Rules,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Rules {
    /// The top Via has an RFC 3261 branch (magic cookie and more).
    Rfc3261 {
        branch: Vec<u8>,
        /// sent-by host, lowercased (host names are case-insensitive).
        host: Vec<u8>,
        port: Option<u16>,
        method: Vec<u8>,
    },
    /// RFC 2543 matching: everything that identified a transaction before branches.
    Rfc2543 {
        request_uri: Vec<u8>,
        to_tag: Option<Vec<u8>>,
        from_tag: Option<Vec<u8>>,
        call_id: Vec<u8>,
        cseq: u32,
        top_via: Vec<u8>,
        method: Vec<u8>,
    },
}

const INVITE: &[u8] = b"INVITE";

impl ServerKey {
    /// The key of a received request. An ACK gets the key of the INVITE it acknowledges
    /// (under RFC 2543 rules its To tag is the one of the response, see
    /// [`ServerKey::with_to_tag`]).
    pub fn from_request(msg: &Message) -> Result<Self, Error> {
        let method = match msg.method() {
            None => return Err(Error::NotARequest),
            Some(Method::Ack) => INVITE,
            Some(_) => msg.method_bytes().unwrap_or_default(),
        };
        let h = msg.headers();
        let via = h.top_via()?;
        let rules = if via.has_rfc3261_branch() {
            Rules::Rfc3261 {
                branch: via.branch().unwrap_or_default().to_vec(),
                host: via.host_raw.to_ascii_lowercase(),
                port: via.port,
                method: method.to_vec(),
            }
        } else {
            Rules::Rfc2543 {
                request_uri: msg.request_uri_bytes().unwrap_or_default().to_vec(),
                to_tag: h.to()?.tag().map(<[u8]>::to_vec),
                from_tag: h.from()?.tag().map(<[u8]>::to_vec),
                call_id: h.call_id()?.to_vec(),
                cseq: h.cseq()?.seq,
                top_via: via.raw.to_vec(),
                method: method.to_vec(),
            }
        };
        Ok(ServerKey { rules })
    }

    /// The key of the INVITE server transaction a CANCEL with this key cancels: the same
    /// key with the method ignored (§9.2, §17.2.3).
    pub fn invite_key_for_cancel(&self) -> ServerKey {
        let mut rules = self.rules.clone();
        match &mut rules {
            Rules::Rfc3261 { method, .. } | Rules::Rfc2543 { method, .. } => {
                *method = INVITE.to_vec();
            }
        }
        ServerKey { rules }
    }

    /// Under RFC 2543 rules, this key with the To tag replaced: the key an ACK carries when
    /// it acknowledges a response sent with that tag. `None` under RFC 3261 rules.
    pub fn with_to_tag(&self, tag: Option<&[u8]>) -> Option<ServerKey> {
        match &self.rules {
            Rules::Rfc3261 { .. } => None,
            Rules::Rfc2543 { .. } => {
                let mut rules = self.rules.clone();
                if let Rules::Rfc2543 { to_tag, .. } = &mut rules {
                    *to_tag = tag.map(<[u8]>::to_vec);
                }
                Some(ServerKey { rules })
            }
        }
    }

    /// Whether the key follows the RFC 3261 (branch) rules.
    pub fn is_rfc3261(&self) -> bool {
        matches!(self.rules, Rules::Rfc3261 { .. })
    }
}
