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
        if name.is_empty() {
            return Other;
        }
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
        // One candidate per (length, first letter): a jump on the length, a small match on
        // the letter, then one case-insensitive compare.
        let first = name[0] | 0x20;
        let (full, h): (&[u8], HeaderName) = match name.len() {
            2 if first == b't' => (b"to", To),
            3 if first == b'v' => (b"via", Via),
            4 => match first {
                b'f' => (b"from", From),
                b'c' => (b"cseq", CSeq),
                _ => return Other,
            },
            5 => match first {
                b'r' => (b"route", Route),
                b'a' => (b"allow", Allow),
                b'e' => (b"event", Event),
                _ => return Other,
            },
            6 => match first {
                b'r' => (b"reason", Reason),
                b's' => (b"server", Server),
                _ => return Other,
            },
            7 => match first {
                b'c' if name[1] | 0x20 == b'a' => (b"call-id", CallId),
                b'c' => (b"contact", Contact),
                b'r' => (b"require", Require),
                b'e' => (b"expires", Expires),
                b's' => (b"subject", Subject),
                _ => return Other,
            },
            8 if first == b'r' => (b"refer-to", ReferTo),
            9 if first == b's' => (b"supported", Supported),
            10 if first == b'u' => (b"user-agent", UserAgent),
            11 => match first {
                b'r' if name[2] | 0x20 == b't' => (b"retry-after", RetryAfter),
                b'r' => (b"referred-by", ReferredBy),
                b'u' => (b"unsupported", Unsupported),
                _ => return Other,
            },
            12 => match first {
                b'm' => (b"max-forwards", MaxForwards),
                b'r' => (b"record-route", RecordRoute),
                b'c' => (b"content-type", ContentType),
                b'a' => (b"allow-events", AllowEvents),
                _ => return Other,
            },
            13 if first == b'p' => (b"proxy-require", ProxyRequire),
            14 if first == b'c' => (b"content-length", ContentLength),
            15 if first == b's' => (b"session-expires", SessionExpires),
            16 if first == b'c' => (b"content-encoding", ContentEncoding),
            _ => return Other,
        };
        // `full` is lowercase letters and '-': OR-ing 0x20 folds the case of a letter and
        // leaves '-' alone; the only other byte that folds onto one of them is CR, which a
        // header name never holds.
        if name.iter().zip(full).all(|(&a, &b)| a | 0x20 == b) {
            h
        } else {
            Other
        }
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
