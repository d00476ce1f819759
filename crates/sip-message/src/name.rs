//! Header names: the ones the switch reads get a variant; every other name is `Other` and is
//! never looked at again. Matching is ASCII case-insensitive and knows the compact forms of
//! RFC 3261 §7.3.3 and later RFCs.

/// A header name, recognised once when the message is indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    Route,
    RecordRoute,
    Contact,
    ContentLength,
    ContentType,
    ContentEncoding,
    Require,
    ProxyRequire,
    Supported,
    Unsupported,
    Allow,
    Reason,
    RetryAfter,
    UserAgent,
    Server,
    SessionExpires,
    Expires,
    Subject,
    Event,
    AllowEvents,
    ReferTo,
    ReferredBy,
    /// Any other header; its name is only in the message bytes.
    Other,
}

impl HeaderName {
    /// Recognises a header name (full or compact form, any case).
    pub fn from_bytes(name: &[u8]) -> Self {
        use HeaderName::*;
        if name.len() == 1 {
            return match name[0].to_ascii_lowercase() {
                b'v' => Via,
                b'f' => From,
                b't' => To,
                b'i' => CallId,
                b'm' => Contact,
                b'l' => ContentLength,
                b'c' => ContentType,
                b'e' => ContentEncoding,
                b'k' => Supported,
                b's' => Subject,
                b'o' => Event,
                b'u' => AllowEvents,
                b'r' => ReferTo,
                b'b' => ReferredBy,
                b'x' => SessionExpires,
                _ => Other,
            };
        }
        let candidates: &[(&[u8], HeaderName)] = match name.len() {
            2 => &[(b"to", To)],
            3 => &[(b"via", Via)],
            4 => &[(b"from", From), (b"cseq", CSeq)],
            5 => &[(b"route", Route), (b"allow", Allow), (b"event", Event)],
            6 => &[(b"reason", Reason), (b"server", Server)],
            7 => &[
                (b"call-id", CallId),
                (b"contact", Contact),
                (b"require", Require),
                (b"expires", Expires),
                (b"subject", Subject),
            ],
            8 => &[(b"refer-to", ReferTo)],
            9 => &[(b"supported", Supported)],
            10 => &[(b"user-agent", UserAgent)],
            11 => &[
                (b"retry-after", RetryAfter),
                (b"unsupported", Unsupported),
                (b"referred-by", ReferredBy),
            ],
            12 => &[
                (b"max-forwards", MaxForwards),
                (b"record-route", RecordRoute),
                (b"content-type", ContentType),
                (b"allow-events", AllowEvents),
            ],
            13 => &[(b"proxy-require", ProxyRequire)],
            14 => &[(b"content-length", ContentLength)],
            15 => &[(b"session-expires", SessionExpires)],
            16 => &[(b"content-encoding", ContentEncoding)],
            _ => &[],
        };
        candidates
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or(Other, |&(_, h)| h)
    }

    /// The full name as written by this crate when it adds a header.
    pub fn as_str(self) -> &'static str {
        use HeaderName::*;
        match self {
            Via => "Via",
            From => "From",
            To => "To",
            CallId => "Call-ID",
            CSeq => "CSeq",
            MaxForwards => "Max-Forwards",
            Route => "Route",
            RecordRoute => "Record-Route",
            Contact => "Contact",
            ContentLength => "Content-Length",
            ContentType => "Content-Type",
            ContentEncoding => "Content-Encoding",
            Require => "Require",
            ProxyRequire => "Proxy-Require",
            Supported => "Supported",
            Unsupported => "Unsupported",
            Allow => "Allow",
            Reason => "Reason",
            RetryAfter => "Retry-After",
            UserAgent => "User-Agent",
            Server => "Server",
            SessionExpires => "Session-Expires",
            Expires => "Expires",
            Subject => "Subject",
            Event => "Event",
            AllowEvents => "Allow-Events",
            ReferTo => "Refer-To",
            ReferredBy => "Referred-By",
            Other => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HeaderName;

    #[test]
    fn compact_and_case_insensitive() {
        assert_eq!(HeaderName::from_bytes(b"v"), HeaderName::Via);
        assert_eq!(HeaderName::from_bytes(b"I"), HeaderName::CallId);
        assert_eq!(
            HeaderName::from_bytes(b"MaX-fOrWaRdS"),
            HeaderName::MaxForwards
        );
        assert_eq!(HeaderName::from_bytes(b"x"), HeaderName::SessionExpires);
        assert_eq!(HeaderName::from_bytes(b"C%6Fntact"), HeaderName::Other);
    }

    #[test]
    fn every_full_name_round_trips() {
        use HeaderName::*;
        for h in [
            Via,
            From,
            To,
            CallId,
            CSeq,
            MaxForwards,
            Route,
            RecordRoute,
            Contact,
            ContentLength,
            ContentType,
            ContentEncoding,
            Require,
            ProxyRequire,
            Supported,
            Unsupported,
            Allow,
            Reason,
            RetryAfter,
            UserAgent,
            Server,
            SessionExpires,
            Expires,
            Subject,
            Event,
            AllowEvents,
            ReferTo,
            ReferredBy,
        ] {
            assert_eq!(HeaderName::from_bytes(h.as_str().as_bytes()), h, "{h:?}");
        }
    }
}
