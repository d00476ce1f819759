//! A carrier's codec allow-list applied to an SDP offer (RFC 4566/8866): payload types of
//! audio `m=` lines whose encoding is not allowed are removed with their `a=rtpmap`,
//! `a=fmtp` and `a=rtcp-fb` lines; every other line stays byte for byte. A line filter, not
//! an SDP library: the offer is forwarded, so it must come out exactly as it went in apart
//! from the removed payloads, and the full-model SDP crates re-serialise every line.

/// The offer has no audio codec the carrier takes: the attempt goes to the next carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoCodecLeft;

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
pub fn audio_codecs(body: &[u8]) -> Vec<String> {
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
pub fn filter_codecs(body: &[u8], allowed: &[String]) -> Result<Option<Vec<u8>>, NoCodecLeft> {
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
}
