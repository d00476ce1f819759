//! A call's SIP trace as a ladder: who took part (the customer, the switch, each carrier, in
//! the order they appear) and one arrow per message, labelled with the method or the
//! status and placed by its time from the first message. [`Ladder::text`] draws it for
//! `vts trace`; the same structure is the JSON of `vts trace --format json` (and the panel's
//! ladder later).

use std::fmt::Write as _;

use serde::Serialize;

/// One message of the trace, as stored.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    pub at_us: i64,
    pub source: &'a str,
    pub destination: &'a str,
    pub message: &'a [u8],
}

/// A column of the ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Party {
    /// `customer`, `vts`, `carrier 1`, ... (`other` for an address of neither side).
    pub name: String,
    pub address: String,
}

/// An arrow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arrow {
    /// Milliseconds from the first message.
    pub offset_ms: f64,
    pub from: usize,
    pub to: usize,
    /// `INVITE`, `ACK`, `200 OK`...
    pub label: String,
    pub at_us: i64,
    /// The message, as text (invalid UTF-8 replaced).
    pub message: String,
}

/// The ladder of one call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ladder {
    pub call_id: String,
    pub parties: Vec<Party>,
    pub arrows: Vec<Arrow>,
}

/// `INVITE` for a request, `486 Busy Here` for a response (at most 22 characters).
fn label(message: &[u8]) -> String {
    let first = message.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = String::from_utf8_lossy(first.strip_suffix(b"\r").unwrap_or(first));
    let text = match first.strip_prefix("SIP/2.0 ") {
        Some(status) => status.to_string(),
        None => first.split(' ').next().unwrap_or_default().to_string(),
    };
    text.chars().take(22).collect()
}

impl Ladder {
    /// The ladder of `steps` (in the order they were captured). The customer is the source
    /// of the first INVITE and the switch its destination; every other address is a carrier,
    /// numbered as it appears.
    pub fn new(call_id: &str, steps: &[Step<'_>]) -> Ladder {
        let invite = steps.iter().find(|s| s.message.starts_with(b"INVITE "));
        let mut parties: Vec<Party> = Vec::new();
        if let Some(i) = invite {
            parties.push(Party {
                name: "customer".into(),
                address: i.source.into(),
            });
            parties.push(Party {
                name: "vts".into(),
                address: i.destination.into(),
            });
        }
        let index = |address: &str, parties: &mut Vec<Party>| -> usize {
            if let Some(i) = parties.iter().position(|p| p.address == address) {
                return i;
            }
            let n = parties
                .iter()
                .filter(|p| p.name.starts_with("carrier"))
                .count();
            let name = if invite.is_some() {
                format!("carrier {}", n + 1)
            } else {
                "other".into()
            };
            parties.push(Party {
                name,
                address: address.into(),
            });
            parties.len() - 1
        };
        let start = steps.first().map_or(0, |s| s.at_us);
        let arrows = steps
            .iter()
            .map(|s| Arrow {
                offset_ms: (s.at_us - start) as f64 / 1000.0,
                from: index(s.source, &mut parties),
                to: index(s.destination, &mut parties),
                label: label(s.message),
                at_us: s.at_us,
                message: String::from_utf8_lossy(s.message).into_owned(),
            })
            .collect();
        Ladder {
            call_id: call_id.into(),
            parties,
            arrows,
        }
    }

    /// The ladder drawn in text: a column per party, an arrow per message.
    pub fn text(&self) -> String {
        const LEFT: usize = 13;
        const GAP: usize = 26;
        let width = LEFT + GAP * self.parties.len().max(1);
        let x = |i: usize| LEFT + GAP * i;
        let mut out = String::new();
        let mut header = |f: &dyn Fn(&Party) -> &str| {
            let mut line = vec![b' '; width];
            for (i, p) in self.parties.iter().enumerate() {
                let t = f(p);
                let at = x(i).saturating_sub(t.len() / 2);
                for (k, b) in t.bytes().enumerate() {
                    if let Some(c) = line.get_mut(at + k) {
                        *c = b;
                    }
                }
            }
            let _ = writeln!(out, "{}", String::from_utf8_lossy(&line).trim_end());
        };
        header(&|p| p.name.as_str());
        header(&|p| p.address.as_str());
        for a in &self.arrows {
            let mut line = vec![b' '; width];
            let offset = format!("{:>9.3} ms", a.offset_ms);
            line[..offset.len()].copy_from_slice(offset.as_bytes());
            for i in 0..self.parties.len() {
                line[x(i)] = b'|';
            }
            let (l, r) = (x(a.from.min(a.to)), x(a.from.max(a.to)));
            if l == r {
                // A message from a party to itself: a mark beside its lane.
                let t = format!("<> {}", a.label);
                for (k, b) in t.bytes().enumerate() {
                    if let Some(c) = line.get_mut(l + 2 + k) {
                        *c = b;
                    }
                }
            } else {
                for c in &mut line[l + 1..r] {
                    *c = b'-';
                }
                if a.to > a.from {
                    line[r - 1] = b'>';
                } else {
                    line[l + 1] = b'<';
                }
                let t = format!(" {} ", a.label);
                let room = r - l - 3;
                let t: String = t.chars().take(room).collect();
                let at = l + 2 + (room - t.len()) / 2;
                line[at..at + t.len()].copy_from_slice(t.as_bytes());
            }
            let _ = writeln!(out, "{}", String::from_utf8_lossy(&line).trim_end());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_with_a_failover_draws_three_columns() {
        let steps = [
            (0, "c:1", "v:2", "INVITE sip:1@v SIP/2.0\r\n"),
            (400, "v:2", "c:1", "SIP/2.0 100 Trying\r\n"),
            (900, "v:2", "a:3", "INVITE sip:1@a SIP/2.0\r\n"),
            (5_000, "a:3", "v:2", "SIP/2.0 503 Service Unavailable\r\n"),
            (5_200, "v:2", "b:4", "INVITE sip:1@b SIP/2.0\r\n"),
            (9_000, "b:4", "v:2", "SIP/2.0 486 Busy Here\r\n"),
            (9_300, "v:2", "c:1", "SIP/2.0 486 Busy Here\r\n"),
        ];
        let steps: Vec<Step<'_>> = steps
            .iter()
            .map(|&(at_us, source, destination, m)| Step {
                at_us,
                source,
                destination,
                message: m.as_bytes(),
            })
            .collect();
        let l = Ladder::new("x@y", &steps);
        let names: Vec<&str> = l.parties.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["customer", "vts", "carrier 1", "carrier 2"]);
        let a = &l.arrows;
        assert_eq!((a[0].from, a[0].to, a[0].label.as_str()), (0, 1, "INVITE"));
        assert_eq!((a[3].from, a[3].to), (2, 1));
        assert_eq!(a[3].label, "503 Service Unavailabl", "labels are cut at 22");
        assert_eq!(a[6].offset_ms, 9.3);
        let text = l.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2 + 7);
        assert!(lines[0].contains("customer") && lines[0].contains("carrier 2"));
        assert!(
            lines[2].starts_with("    0.000 ms |") && lines[2].contains("INVITE"),
            "{text}"
        );
        assert!(lines[2].contains("->|"), "left to right: {text}");
        assert!(lines[3].contains("|<-"), "right to left: {text}");
        assert!(lines[8].starts_with("    9.300 ms"), "{text}");
    }
}
