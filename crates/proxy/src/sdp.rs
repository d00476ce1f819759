//! A carrier's codec allow-list applied to an SDP offer (RFC 4566/8866): payload types of
//! audio `m=` lines whose encoding is not allowed are removed with their `a=rtpmap`,
//! `a=fmtp` and `a=rtcp-fb` lines; every other line stays byte for byte. A line filter, not
//! an SDP library: the offer is forwarded, so it must come out exactly as it went in apart
//! from the removed payloads, and the full-model SDP crates re-serialise every line.
//!
//! The work is linear in the offer's size: one pass cuts the offer into media sections and
//! builds each audio section's payload type → encoding map from its `a=rtpmap` lines; a
//! second pass writes the filtered offer. An offer past [`MAX_LINES`] lines, or with an audio
//! `m=` line of more than [`MAX_PAYLOAD_TYPES`] payload types, is refused
//! ([`OfferRefused`]; the engine answers 488 when no carrier is left): real offers have a few
//! dozen lines and payload types.

use std::collections::{HashMap, HashSet};
use std::fmt;

/// The most payload types an audio `m=` line may list (RTP/AVP has 128 in all; real offers
/// list a handful). [`filter_codecs`] refuses more; [`audio_codecs`] reads the first ones.
pub const MAX_PAYLOAD_TYPES: usize = 64;

/// The most lines an offer may have. [`filter_codecs`] refuses more; [`audio_codecs`] reads
/// the first ones.
pub const MAX_LINES: usize = 512;

/// Why an offer cannot go to a carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferRefused {
    /// The offer has no audio codec the carrier takes: the attempt goes to the next carrier.
    NoCodecLeft,
    /// An audio `m=` line lists more than [`MAX_PAYLOAD_TYPES`] payload types.
    TooManyPayloadTypes,
    /// The offer has more than [`MAX_LINES`] lines.
    TooManyLines,
}

pub use OfferRefused::NoCodecLeft;

impl fmt::Display for OfferRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoCodecLeft => f.write_str("no codec of the offer is allowed"),
            OfferRefused::TooManyPayloadTypes => write!(
                f,
                "SDP offer refused: an audio m= line lists more than {MAX_PAYLOAD_TYPES} payload types"
            ),
            OfferRefused::TooManyLines => {
                write!(f, "SDP offer refused: more than {MAX_LINES} lines")
            }
        }
    }
}

impl std::error::Error for OfferRefused {}

/// Encoding names of RFC 3551's static audio payload types.
fn static_name(pt: &str) -> Option<&'static str> {
    Some(match pt {
        "0" => "PCMU",
        "3" => "GSM",
        "4" => "G723",
        "8" => "PCMA",
        "9" => "G722",
        "13" => "CN",
        "18" => "G729",
        _ => return None,
    })
}

/// Names that travel with any codec: DTMF events are not a voice codec.
fn always_kept(name: &str) -> bool {
    name.eq_ignore_ascii_case("telephone-event")
}

/// The encoding names of every audio payload offered, in order (for CDRs and logs). Past the
/// caps, only the first [`MAX_LINES`] lines and [`MAX_PAYLOAD_TYPES`] payload types of each
/// audio `m=` line are read.
pub fn audio_codecs(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let Ok(sections) = sections(&text, false) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for section in sections.iter().filter(|s| s.audio) {
        for pt in &section.payloads {
            if let Some(name) = section.name_of(pt) {
                out.push(name);
            }
        }
    }
    out
}

/// `body` with only `allowed` codecs (encoding names, upper case) in its audio sections;
/// `Ok(None)` when nothing had to change (an empty allow-list allows everything). An offer
/// past the caps is refused whatever the allow-list.
pub fn filter_codecs(body: &[u8], allowed: &[String]) -> Result<Option<Vec<u8>>, OfferRefused> {
    if allowed.is_empty() || body.is_empty() {
        return Ok(None);
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return Ok(None);
    };
    let sections = sections(text, true)?;
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    for section in &sections {
        if !section.audio {
            section.lines.iter().for_each(|l| out.push_str(l));
            continue;
        }
        // Each payload type's name is looked up once, in the section's map.
        let kept: Vec<(&str, String)> = section
            .payloads
            .iter()
            .filter_map(|pt| {
                let name = section.name_of(pt)?;
                let allow =
                    always_kept(&name) || allowed.iter().any(|a| a.eq_ignore_ascii_case(&name));
                allow.then_some((*pt, name))
            })
            .collect();
        let voice = kept.iter().any(|(_, name)| !always_kept(name));
        let keep: Vec<&str> = kept.iter().map(|(pt, _)| *pt).collect();
        if !voice {
            return Err(NoCodecLeft);
        }
        if keep.len() == section.payloads.len() {
            section.lines.iter().for_each(|l| out.push_str(l));
            continue;
        }
        changed = true;
        let wanted: HashSet<&str> = keep.iter().copied().collect();
        for (i, line) in section.lines.iter().enumerate() {
            visit();
            if i == 0 {
                let (content, eol) = split_eol(line);
                let head: Vec<&str> = content.split(' ').take(3).collect();
                out.push_str(&head.join(" "));
                for pt in &keep {
                    out.push(' ');
                    out.push_str(pt);
                }
                out.push_str(eol);
                continue;
            }
            if let Some(pt) = attribute_payload(line)
                && !wanted.contains(pt)
            {
                continue;
            }
            out.push_str(line);
        }
    }
    Ok(changed.then(|| out.into_bytes()))
}

struct Section<'a> {
    /// Lines with their line ends; the first is the `m=` line (or the session part's first).
    lines: Vec<&'a str>,
    audio: bool,
    payloads: Vec<&'a str>,
    /// Audio sections: payload type → encoding as written in its first `a=rtpmap` line.
    rtpmap: HashMap<&'a str, &'a str>,
}

impl Section<'_> {
    fn name_of(&self, pt: &str) -> Option<String> {
        self.rtpmap
            .get(pt)
            .map(|enc| {
                enc.split('/')
                    .next()
                    .unwrap_or(enc)
                    .trim()
                    .to_ascii_uppercase()
            })
            .or_else(|| static_name(pt).map(str::to_string))
            .map(|n| {
                if n == "TELEPHONE-EVENT" {
                    "telephone-event".to_string()
                } else {
                    n
                }
            })
    }
}

fn split_eol(line: &str) -> (&str, &str) {
    let content = line.trim_end_matches(['\r', '\n']);
    (content, &line[content.len()..])
}

/// The payload type an `a=rtpmap:`, `a=fmtp:` or `a=rtcp-fb:` line is about.
fn attribute_payload(line: &str) -> Option<&str> {
    let content = split_eol(line).0;
    let rest = ["a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"]
        .iter()
        .find_map(|p| content.strip_prefix(p))?;
    rest.split([' ', '\t']).next()
}

/// One pass: the offer cut into its session part and media sections, each audio section with
/// its payload types and rtpmap. `strict`: past a cap, refuse; else read up to the caps.
fn sections(text: &str, strict: bool) -> Result<Vec<Section<'_>>, OfferRefused> {
    let mut sections = vec![Section {
        lines: Vec::new(),
        audio: false,
        payloads: Vec::new(),
        rtpmap: HashMap::new(),
    }];
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if n == MAX_LINES {
            if strict {
                return Err(OfferRefused::TooManyLines);
            }
            break;
        }
        visit();
        let content = split_eol(line).0;
        if let Some(m) = content.strip_prefix("m=") {
            let mut fields = m.split(' ');
            let media = fields.next();
            let _port = fields.next();
            let proto = fields.next();
            let audio = media == Some("audio") && proto.is_some_and(|p| p.contains("RTP"));
            let mut payloads = Vec::new();
            if audio {
                payloads.extend(fields.by_ref().take(MAX_PAYLOAD_TYPES));
                if strict && fields.next().is_some() {
                    return Err(OfferRefused::TooManyPayloadTypes);
                }
            }
            sections.push(Section {
                lines: Vec::new(),
                audio,
                payloads,
                rtpmap: HashMap::new(),
            });
        }
        let Some(s) = sections.last_mut() else {
            continue;
        };
        if s.audio
            && let Some((pt, enc)) = content
                .strip_prefix("a=rtpmap:")
                .and_then(|rest| rest.split_once(' '))
        {
            // The first rtpmap of a payload type is the one that counts.
            s.rtpmap.entry(pt).or_insert(enc);
        }
        s.lines.push(line);
    }
    Ok(sections)
}

#[cfg(test)]
thread_local! {
    /// Lines visited by the passes over an offer (the test hook for linear work).
    static VISITS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn visit() {
    #[cfg(test)]
    VISITS.with(|v| v.set(v.get() + 1));
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0 8 18 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\na=sendrecv\r\n";

    #[test]
    fn keeps_allowed_codecs_and_dtmf_byte_for_byte() {
        let out = filter_codecs(OFFER.as_bytes(), &["PCMA".into()])
            .unwrap()
            .unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n"
        );
        assert_eq!(
            audio_codecs(OFFER.as_bytes()),
            ["PCMU", "PCMA", "G729", "telephone-event"]
        );
    }

    #[test]
    fn nothing_to_change_or_nothing_left() {
        assert_eq!(filter_codecs(OFFER.as_bytes(), &[]), Ok(None));
        let all: Vec<String> = ["PCMU", "PCMA", "G729"].map(String::from).to_vec();
        assert_eq!(filter_codecs(OFFER.as_bytes(), &all), Ok(None));
        assert_eq!(
            filter_codecs(OFFER.as_bytes(), &["G722".into()]),
            Err(NoCodecLeft)
        );
        // Static payload types need no rtpmap.
        let bare = "v=0\nm=audio 4000 RTP/AVP 0 8\n";
        let out = filter_codecs(bare.as_bytes(), &["pcmu".into()])
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "v=0\nm=audio 4000 RTP/AVP 0\n"
        );
    }

    /// The line filter as it was before the one-pass rewrite (it looked a payload type's
    /// rtpmap up by scanning every line of its section): the oracle for byte-for-byte
    /// behaviour.
    mod reference {
        /// The offer has no audio codec the carrier takes: the attempt goes to the next carrier.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub(super) struct NoCodecLeft;

        /// Encoding names of RFC 3551's static audio payload types.
        fn static_name(pt: &str) -> Option<&'static str> {
            Some(match pt {
                "0" => "PCMU",
                "3" => "GSM",
                "4" => "G723",
                "8" => "PCMA",
                "9" => "G722",
                "13" => "CN",
                "18" => "G729",
                _ => return None,
            })
        }

        /// Names that travel with any codec: DTMF events are not a voice codec.
        fn always_kept(name: &str) -> bool {
            name.eq_ignore_ascii_case("telephone-event")
        }

        /// The encoding names of every audio payload offered, in order (for CDRs and logs).
        pub(super) fn audio_codecs(body: &[u8]) -> Vec<String> {
            let text = String::from_utf8_lossy(body);
            let mut out = Vec::new();
            for section in sections(&text).iter().filter(|s| s.audio) {
                for pt in &section.payloads {
                    if let Some(name) = section.name_of(pt) {
                        out.push(name);
                    }
                }
            }
            out
        }

        /// `body` with only `allowed` codecs (encoding names, upper case) in its audio sections;
        /// `Ok(None)` when nothing had to change (an empty allow-list allows everything).
        pub(super) fn filter_codecs(
            body: &[u8],
            allowed: &[String],
        ) -> Result<Option<Vec<u8>>, NoCodecLeft> {
            if allowed.is_empty() || body.is_empty() {
                return Ok(None);
            }
            let Ok(text) = std::str::from_utf8(body) else {
                return Ok(None);
            };
            let sections = sections(text);
            let mut out = String::with_capacity(text.len());
            let mut changed = false;
            for section in &sections {
                if !section.audio {
                    section.lines.iter().for_each(|l| out.push_str(l));
                    continue;
                }
                let keep: Vec<&str> = section
                    .payloads
                    .iter()
                    .filter(|pt| {
                        section.name_of(pt).is_some_and(|n| {
                            always_kept(&n) || allowed.iter().any(|a| a.eq_ignore_ascii_case(&n))
                        })
                    })
                    .map(String::as_str)
                    .collect();
                let voice = keep
                    .iter()
                    .any(|pt| section.name_of(pt).is_some_and(|n| !always_kept(&n)));
                if !voice {
                    return Err(NoCodecLeft);
                }
                if keep.len() == section.payloads.len() {
                    section.lines.iter().for_each(|l| out.push_str(l));
                    continue;
                }
                changed = true;
                for (i, line) in section.lines.iter().enumerate() {
                    if i == 0 {
                        let (content, eol) = split_eol(line);
                        let head: Vec<&str> = content.split(' ').take(3).collect();
                        out.push_str(&head.join(" "));
                        for pt in &keep {
                            out.push(' ');
                            out.push_str(pt);
                        }
                        out.push_str(eol);
                        continue;
                    }
                    if let Some(pt) = attribute_payload(line)
                        && !keep.contains(&pt)
                    {
                        continue;
                    }
                    out.push_str(line);
                }
            }
            Ok(changed.then(|| out.into_bytes()))
        }

        struct Section<'a> {
            /// Lines with their line ends; the first is the `m=` line (or the session part's first).
            lines: Vec<&'a str>,
            audio: bool,
            payloads: Vec<String>,
        }

        impl Section<'_> {
            fn name_of(&self, pt: &str) -> Option<String> {
                self.lines
                    .iter()
                    .filter_map(|l| split_eol(l).0.strip_prefix("a=rtpmap:"))
                    .find_map(|rest| {
                        let (p, enc) = rest.split_once(' ')?;
                        (p == pt).then(|| {
                            enc.split('/')
                                .next()
                                .unwrap_or(enc)
                                .trim()
                                .to_ascii_uppercase()
                        })
                    })
                    .or_else(|| static_name(pt).map(str::to_string))
                    .map(|n| {
                        if n == "TELEPHONE-EVENT" {
                            "telephone-event".to_string()
                        } else {
                            n
                        }
                    })
            }
        }

        fn split_eol(line: &str) -> (&str, &str) {
            let content = line.trim_end_matches(['\r', '\n']);
            (content, &line[content.len()..])
        }

        /// The payload type an `a=rtpmap:`, `a=fmtp:` or `a=rtcp-fb:` line is about.
        fn attribute_payload(line: &str) -> Option<&str> {
            let content = split_eol(line).0;
            let rest = ["a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"]
                .iter()
                .find_map(|p| content.strip_prefix(p))?;
            rest.split([' ', '\t']).next()
        }

        fn sections(text: &str) -> Vec<Section<'_>> {
            let mut sections = vec![Section {
                lines: Vec::new(),
                audio: false,
                payloads: Vec::new(),
            }];
            for line in text.split_inclusive('\n') {
                let content = split_eol(line).0;
                if let Some(m) = content.strip_prefix("m=") {
                    let fields: Vec<&str> = m.split(' ').collect();
                    let audio = fields.first() == Some(&"audio")
                        && fields.get(2).is_some_and(|p| p.contains("RTP"));
                    sections.push(Section {
                        lines: Vec::new(),
                        audio,
                        payloads: fields.iter().skip(3).map(|s| s.to_string()).collect(),
                    });
                }
                if let Some(s) = sections.last_mut() {
                    s.lines.push(line);
                }
            }
            sections
        }
    }

    /// Offers that exercise every rule: static types, rtpmap overriding a static name,
    /// duplicate rtpmaps (the first counts), telephone-event in any case, fmtp and rtcp-fb,
    /// video sections, LF line ends, double spaces, tabs, no trailing line end.
    fn corpus() -> Vec<String> {
        let mut v: Vec<String> = vec![
            OFFER.to_string(),
            "v=0\nm=audio 4000 RTP/AVP 0 8\n".into(),
            "v=0\r\nm=audio 1 RTP/AVP 0 8 96 97 101\r\na=rtpmap:96 opus/48000/2\r\n\
a=rtpmap:97 G729/8000\r\na=rtpmap:97 PCMA/8000\r\na=rtpmap:101 Telephone-Event/8000\r\n\
a=fmtp:96 useinbandfec=1\r\na=rtcp-fb:96 nack\r\na=fmtp:101\t0-16\r\n\
m=video 2 RTP/AVP 96 97\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 H264/90000\r\n\
m=audio 3 RTP/SAVP 8  18 0\r\na=rtpmap:8 G729/8000\r\na=rtpmap:0 pcmu /8000\r\n"
                .into(),
            "v=0\r\nm=audio 1 RTP/AVP 101 13\r\na=rtpmap:101 telephone-event/8000".into(),
            "v=0\r\nm=audio 1 UDP/TLS/RTP/SAVPF 111 0\r\na=rtpmap:111 OPUS/48000/2\r\n\
m=audio 2 udp 0 8\r\na=rtpmap:8 PCMU/8000\r\nm=image 3 udptl t38\r\n"
                .into(),
            "m=audio 1 RTP/AVP 8 0\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000".into(),
        ];
        v.push(worst_case(64, 440));
        v
    }

    #[test]
    fn same_bytes_as_the_line_scanning_filter() {
        let lists: Vec<Vec<String>> = [
            &["PCMA"][..],
            &["PCMU"],
            &["G729"],
            &["OPUS", "PCMU"],
            &["pcma", "g729"],
            &["CN"],
            &["G722"],
            &["X-CODEC-00", "PCMU"],
        ]
        .iter()
        .map(|l| l.iter().map(|s| s.to_string()).collect())
        .collect();
        for offer in corpus() {
            assert_eq!(
                audio_codecs(offer.as_bytes()),
                reference::audio_codecs(offer.as_bytes()),
                "{offer}"
            );
            for allowed in &lists {
                let new = filter_codecs(offer.as_bytes(), allowed);
                let old = reference::filter_codecs(offer.as_bytes(), allowed);
                match (new, old) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "{allowed:?} {offer}"),
                    (Err(NoCodecLeft), Err(reference::NoCodecLeft)) => {}
                    (a, b) => panic!("{allowed:?}: {a:?} vs {b:?}\n{offer}"),
                }
            }
        }
    }

    /// An audio section of `pts` payload types (96, 97, ...) and `rtpmaps` rtpmap lines
    /// naming them over and over: the input that made the old filter scan every line per
    /// payload type.
    fn worst_case(pts: usize, rtpmaps: usize) -> String {
        let mut s =
            String::from("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n");
        s.push_str("t=0 0\r\nm=audio 4000 RTP/AVP 0");
        for pt in 0..pts - 1 {
            s.push_str(&format!(" {}", 96 + pt % 32));
        }
        s.push_str("\r\n");
        for i in 0..rtpmaps {
            s.push_str(&format!(
                "a=rtpmap:{} X-CODEC-{:02}/8000/1\r\n",
                96 + i % 32,
                i % 97
            ));
        }
        s
    }

    fn visits(f: impl FnOnce()) -> usize {
        VISITS.with(|v| v.set(0));
        f();
        VISITS.with(|v| v.get())
    }

    #[test]
    fn a_15_kb_offer_costs_one_visit_per_line() {
        let offer = worst_case(MAX_PAYLOAD_TYPES, 480);
        assert!(offer.len() >= 15_000, "{}", offer.len());
        let lines = offer.lines().count();
        assert!(lines <= MAX_LINES);
        let pcmu = ["PCMU".to_string()];
        // One pass to read the offer, one to write it: twice the lines at most (the old
        // filter visited lines × payload types, 64 times as many).
        let n = visits(|| {
            let out = filter_codecs(offer.as_bytes(), &pcmu).unwrap().unwrap();
            assert!(out.starts_with(b"v=0"));
        });
        assert!(n <= 2 * lines, "{n} visits for {lines} lines");
        let n = visits(|| assert_eq!(audio_codecs(offer.as_bytes()).len(), MAX_PAYLOAD_TYPES));
        assert!(n <= lines, "{n} visits for {lines} lines");
    }

    #[test]
    fn work_grows_linearly_with_the_offer() {
        let pcmu = ["PCMU".to_string()];
        let small = worst_case(8, 55);
        let large = worst_case(64, 440);
        let work = |offer: &str| {
            visits(|| {
                let _ = filter_codecs(offer.as_bytes(), &pcmu);
                let _ = audio_codecs(offer.as_bytes());
            })
        };
        let (w1, w8) = (work(&small), work(&large));
        // Eight times the payload types and the rtpmap lines: about eight times the work,
        // where a scan per payload type would be 64 times.
        assert!(w8 <= 8 * w1, "1x: {w1} visits, 8x: {w8}");
        assert!(w8 >= 7 * w1, "1x: {w1} visits, 8x: {w8}");
    }

    #[test]
    fn offers_past_the_caps_are_refused_early() {
        let pcmu = ["PCMU".to_string()];
        // Payload types: the m= line of a crafted 15 KB offer lists thousands.
        let many = worst_case(5000, 10);
        assert!(many.len() >= 15_000);
        let n = visits(|| {
            assert_eq!(
                filter_codecs(many.as_bytes(), &pcmu),
                Err(OfferRefused::TooManyPayloadTypes)
            )
        });
        assert!(n <= 10, "{n}");
        assert_eq!(
            audio_codecs(many.as_bytes()),
            audio_codecs(worst_case(MAX_PAYLOAD_TYPES, 10).as_bytes())
        );
        let at_cap = worst_case(MAX_PAYLOAD_TYPES, 10);
        assert!(filter_codecs(at_cap.as_bytes(), &pcmu).is_ok());
        // Lines: reading stops at the cap.
        let long = worst_case(8, 2000);
        let n = visits(|| {
            assert_eq!(
                filter_codecs(long.as_bytes(), &pcmu),
                Err(OfferRefused::TooManyLines)
            )
        });
        assert_eq!(n, MAX_LINES);
        let n = visits(|| assert_eq!(audio_codecs(long.as_bytes()).len(), 8));
        assert_eq!(n, MAX_LINES);
        let just = worst_case(8, MAX_LINES - 6);
        assert_eq!(just.lines().count(), MAX_LINES);
        assert!(filter_codecs(just.as_bytes(), &pcmu).is_ok());
        assert!(OfferRefused::TooManyLines.to_string().contains("512 lines"));
    }
}
