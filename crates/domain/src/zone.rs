//! A customer's time zone (IANA name): its usage counters and minute caps reset at its
//! local midnight and on the first of its local month. Zone rules come from the system's
//! time zone database (`/usr/share/zoneinfo`, Debian's `tzdata`); `UTC` needs none.

use crate::invalid::Invalid;
use std::fmt;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Now, in milliseconds since the Unix epoch: the wall clock read of every part of the
/// switch that stamps a time (CDRs, ledger rows, blocks), so they agree.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A moment as an operator types it: `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time
/// (`2026-12-01T12:00:00Z`); milliseconds since the epoch. The error says what is expected.
pub fn parse_instant(text: &str) -> Result<i64, Invalid> {
    let text = text.trim();
    if text.len() == 10
        && let Ok(date) = text.parse::<jiff::civil::Date>()
    {
        return date
            .to_zoned(TimeZone::UTC)
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|e| Invalid::new(e.to_string()));
    }
    text.parse::<Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| {
            Invalid::new(format!(
                "{text:?}: YYYY-MM-DD or an RFC 3339 time (2026-12-01T00:00:00Z)"
            ))
        })
}

/// A time zone by name.
#[derive(Clone, PartialEq, Eq)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

impl Zone {
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".into(),
            tz: TimeZone::UTC,
        }
    }

    /// A zone by IANA name (`Europe/Madrid`, `America/Mexico_City`, `UTC`).
    pub fn parse(name: &str) -> Result<Zone, Invalid> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("utc") {
            return Ok(Zone::utc());
        }
        let tz = TimeZone::get(name).map_err(|_| {
            format!(
                "unknown time zone {name:?}: an IANA name such as Europe/Madrid (the system's time zone database, package tzdata, must have it)"
            )
        })?;
        Ok(Zone {
            name: name.to_string(),
            tz,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// What to add to a UTC epoch millisecond for the local clock at that moment.
    pub fn offset_ms(&self, epoch_ms: i64) -> i64 {
        Timestamp::from_millisecond(epoch_ms)
            .map_or(0, |t| i64::from(self.tz.to_offset(t).seconds()) * 1000)
    }

    /// The local date (`YYYY-MM-DD`) at `epoch_ms`.
    pub fn date(&self, epoch_ms: i64) -> String {
        Timestamp::from_millisecond(epoch_ms)
            .map(|t| t.to_zoned(self.tz.clone()).date().to_string())
            .unwrap_or_default()
    }

    /// The first millisecond (UTC epoch) of local date `date` (`YYYY-MM-DD`).
    pub fn start_of(&self, date: &str) -> Result<i64, Invalid> {
        let d: jiff::civil::Date = date
            .parse()
            .map_err(|e| format!("bad date {date:?} (YYYY-MM-DD): {e}"))?;
        d.to_zoned(self.tz.clone())
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|e| Invalid::new(format!("date {date:?} in {}: {e}", self.name)))
    }
}

impl Default for Zone {
    fn default() -> Self {
        Zone::utc()
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zone({})", self.name)
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Serialize for Zone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Zone::parse(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-26T23:30:00Z
    const LATE: i64 = 1_795_735_800_000;

    #[test]
    fn local_dates_offsets_and_midnights() {
        let utc = Zone::utc();
        assert_eq!(utc.date(LATE), "2026-11-26");
        assert_eq!(utc.offset_ms(LATE), 0);
        let Ok(madrid) = Zone::parse("Europe/Madrid") else {
            // No time zone database on this machine: only UTC can be checked.
            return;
        };
        // Madrid is UTC+1 in November: 23:30 UTC is 00:30 on the 27th there.
        assert_eq!(madrid.date(LATE), "2026-11-27");
        assert_eq!(madrid.offset_ms(LATE), 3_600_000);
        assert_eq!(madrid.start_of("2026-11-27").unwrap(), LATE - 1_800_000);
        // UTC+2 in July (summer time).
        assert_eq!(madrid.offset_ms(1_783_000_000_000), 7_200_000);
        assert!(
            Zone::parse("Mars/Olympus")
                .unwrap_err()
                .message()
                .contains("unknown time zone")
        );
        assert!(utc.start_of("2026-13-01").is_err());
    }
}
