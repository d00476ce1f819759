//! Numbers (SPEC.md "Numbers"): the customer's dialled number and CLI into E.164 digits
//! before routing, dialing plans and rating; a carrier's profile turns E.164 back into what
//! that carrier wants, for each attempt, from the number as normalised (never from the
//! previous attempt's output).

use crate::invalid::Invalid;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How a customer sends numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InboundFormat {
    /// International digits with the country code (a leading `+` or `00` is dropped).
    #[default]
    E164,
    /// National numbers of the customer's country: a trunk prefix (`0`) or none is replaced
    /// with the country code; `+` or `00` marks an international number.
    National,
    /// Either, told apart by the national number lengths of the country table.
    Auto,
}

impl InboundFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            InboundFormat::E164 => "e164",
            InboundFormat::National => "national",
            InboundFormat::Auto => "auto",
        }
    }
}

impl FromStr for InboundFormat {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "e164" => Ok(InboundFormat::E164),
            "national" => Ok(InboundFormat::National),
            "auto" => Ok(InboundFormat::Auto),
            other => {
                Err(format!("unknown number format {other:?} (e164, national or auto)").into())
            }
        }
    }
}

impl fmt::Display for InboundFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a carrier wants numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboundFormat {
    /// E.164 digits, no `+`.
    #[default]
    International,
    /// E.164 with a leading `+`.
    Plus,
    /// Numbers of the carrier's country as national (trunk prefix and national number);
    /// others with the international call prefix (`00`, `011` from NANP).
    National,
}

impl OutboundFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboundFormat::International => "international",
            OutboundFormat::Plus => "plus",
            OutboundFormat::National => "national",
        }
    }
}

impl FromStr for OutboundFormat {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "international" => Ok(OutboundFormat::International),
            "plus" => Ok(OutboundFormat::Plus),
            "national" => Ok(OutboundFormat::National),
            other => Err(format!(
                "unknown number format {other:?} (international, plus or national)"
            )
            .into()),
        }
    }
}

impl fmt::Display for OutboundFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One country of the table: code, trunk prefix (dialled before national numbers) and the
/// lengths of its national significant numbers.
#[derive(Debug, Clone, Copy)]
pub struct Country {
    pub code: &'static str,
    pub trunk: &'static str,
    pub min_len: usize,
    pub max_len: usize,
}

const fn c(code: &'static str, trunk: &'static str, min_len: usize, max_len: usize) -> Country {
    Country {
        code,
        trunk,
        min_len,
        max_len,
    }
}

/// National number lengths (ITU-T E.164 national numbering plans, as published by each
/// administration). Countries not listed can still be called in E.164; auto-detection
/// needs the customer's own country to be here.
pub const COUNTRIES: &[Country] = &[
    c("1", "", 10, 10),
    c("7", "8", 10, 10),
    c("20", "0", 8, 10),
    c("27", "0", 9, 9),
    c("30", "", 10, 10),
    c("31", "0", 9, 9),
    c("32", "0", 8, 9),
    c("33", "0", 9, 9),
    c("34", "", 9, 9),
    c("36", "06", 8, 9),
    c("39", "", 6, 11),
    c("40", "0", 9, 9),
    c("41", "0", 9, 9),
    c("43", "0", 4, 13),
    c("44", "0", 7, 10),
    c("45", "", 8, 8),
    c("46", "0", 7, 13),
    c("47", "", 8, 8),
    c("48", "", 9, 9),
    c("49", "0", 5, 13),
    c("51", "0", 8, 9),
    c("52", "", 10, 10),
    c("54", "0", 10, 10),
    c("55", "0", 10, 11),
    c("56", "", 9, 9),
    c("57", "", 10, 10),
    c("60", "0", 7, 10),
    c("61", "0", 9, 9),
    c("62", "0", 7, 12),
    c("63", "0", 8, 10),
    c("64", "0", 8, 10),
    c("65", "", 8, 8),
    c("66", "0", 8, 9),
    c("81", "0", 9, 10),
    c("82", "0", 7, 10),
    c("84", "0", 9, 10),
    c("86", "0", 10, 11),
    c("90", "0", 10, 10),
    c("91", "0", 10, 10),
    c("92", "0", 9, 10),
    c("94", "0", 9, 9),
    c("98", "0", 10, 10),
    c("212", "0", 9, 9),
    c("213", "0", 8, 9),
    c("216", "", 8, 8),
    c("234", "0", 8, 10),
    c("254", "0", 9, 9),
    c("351", "", 9, 9),
    c("353", "0", 7, 9),
    c("358", "0", 5, 12),
    c("380", "0", 9, 9),
    c("420", "", 9, 9),
    c("966", "0", 9, 9),
    c("971", "0", 8, 9),
    c("972", "0", 8, 9),
];

/// The country with this code.
pub fn country(code: &str) -> Option<&'static Country> {
    COUNTRIES.iter().find(|c| c.code == code)
}

/// The country an E.164 number belongs to (country codes are prefix-free).
pub fn country_of(e164: &str) -> Option<&'static Country> {
    COUNTRIES.iter().find(|c| e164.starts_with(c.code))
}

/// Checks a country code: 1 to 3 digits, not starting with 0.
pub fn checked_country_code(code: &str) -> Result<String, Invalid> {
    let code = code.trim().trim_start_matches('+');
    if code.is_empty()
        || code.len() > 3
        || code.starts_with('0')
        || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(
            format!("{code:?} is not a country code (1 to 3 digits, not starting with 0)").into(),
        );
    }
    Ok(code.to_string())
}

/// Shortest and longest E.164 number accepted (E.164 allows 15 digits at most; short
/// codes below 4 digits are never international destinations).
const E164_LEN: std::ops::RangeInclusive<usize> = 4..=15;

fn e164(digits: String, raw: &str) -> Result<String, Invalid> {
    if E164_LEN.contains(&digits.len()) {
        Ok(digits)
    } else {
        Err(Invalid::new(format!(
            "{raw:?} gives {} digits: an E.164 number has 4 to 15",
            digits.len()
        )))
    }
}

/// A customer's dialled number (or CLI) as E.164 digits. `country_code` is the customer's
/// country (national and auto formats need one). Visual separators (space, `-`, `.`, `(`,
/// `)`) are ignored.
pub fn normalize(
    raw: &str,
    format: InboundFormat,
    country_code: Option<&str>,
) -> Result<String, Invalid> {
    let cleaned: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let (international, digits) = match cleaned.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => match cleaned.strip_prefix("00") {
            Some(rest) => (true, rest),
            None => (false, cleaned.as_str()),
        },
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Invalid::new(format!("{raw:?} is not a phone number")));
    }
    if international || format == InboundFormat::E164 {
        return e164(digits.to_string(), raw);
    }
    let Some(cc) = country_code else {
        return Err(Invalid::new(format!(
            "{raw:?} is national but the customer has no country code"
        )));
    };
    let home = country(cc);
    let trunk = home.map_or("0", |c| c.trunk);
    match format {
        InboundFormat::National => {
            let national = if trunk.is_empty() {
                digits
            } else {
                digits.strip_prefix(trunk).unwrap_or(digits)
            };
            e164(format!("{cc}{national}"), raw)
        }
        InboundFormat::Auto => {
            let Some(home) = home else {
                return Err(Invalid::new(format!(
                    "country code {cc} is not in the country table: auto-detection needs it"
                )));
            };
            let fits = |c: &Country, n: &str| (c.min_len..=c.max_len).contains(&n.len());
            if !home.trunk.is_empty()
                && let Some(national) = digits.strip_prefix(home.trunk)
                && fits(home, national)
            {
                return e164(format!("{cc}{national}"), raw);
            }
            if fits(home, digits) {
                return e164(format!("{cc}{digits}"), raw);
            }
            if let Some(other) = country_of(digits)
                && fits(other, &digits[other.code.len()..])
            {
                return e164(digits.to_string(), raw);
            }
            Err(Invalid::new(format!(
                "{raw:?} fits neither a national number of +{cc} nor an international one"
            )))
        }
        InboundFormat::E164 => unreachable!("handled above"),
    }
}

/// What a carrier wants a number to look like.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NumberProfile {
    /// Leading digits removed after formatting.
    #[serde(default)]
    pub strip: u8,
    /// Digits put in front after stripping.
    #[serde(default)]
    pub tech_prefix: String,
    /// The destination's format.
    #[serde(default)]
    pub format: OutboundFormat,
    /// The CLI's format.
    #[serde(default)]
    pub cli_format: OutboundFormat,
    /// The carrier's country (national formats need one; without it they are international).
    #[serde(default)]
    pub country_code: Option<String>,
}

/// One E.164 number in `format` for a carrier of country `country_code`.
pub fn format_number(e164: &str, format: OutboundFormat, country_code: Option<&str>) -> String {
    match format {
        OutboundFormat::International => e164.to_string(),
        OutboundFormat::Plus => format!("+{e164}"),
        OutboundFormat::National => {
            let Some(cc) = country_code else {
                return e164.to_string();
            };
            match e164.strip_prefix(cc) {
                Some(national) => {
                    let trunk = country(cc).map_or("0", |c| c.trunk);
                    format!("{trunk}{national}")
                }
                None if cc == "1" => format!("011{e164}"),
                None => format!("00{e164}"),
            }
        }
    }
}

impl NumberProfile {
    /// The destination as this carrier gets it: formatted, `strip` digits removed, the tech
    /// prefix added.
    pub fn destination(&self, e164: &str) -> String {
        let formatted = format_number(e164, self.format, self.country_code.as_deref());
        let cut = usize::from(self.strip).min(formatted.len());
        format!("{}{}", self.tech_prefix, &formatted[cut..])
    }

    /// The CLI as this carrier gets it (a CLI that is not a number, e.g. `anonymous`, goes
    /// as it is).
    pub fn cli(&self, cli: &str) -> String {
        if cli.is_empty() || !cli.bytes().all(|b| b.is_ascii_digit()) {
            return cli.to_string();
        }
        format_number(cli, self.cli_format, self.country_code.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_customers() {
        let n = |s| normalize(s, InboundFormat::E164, None);
        assert_eq!(n("+44 20 7946 0018").unwrap(), "442079460018");
        assert_eq!(n("00442079460018").unwrap(), "442079460018");
        assert_eq!(n("442079460018").unwrap(), "442079460018");
        assert!(n("44207946001899999").is_err(), "16 digits");
        assert!(n("12a4").is_err());
        assert!(n("").is_err());
    }

    #[test]
    fn national_customers() {
        let n = |s| normalize(s, InboundFormat::National, Some("44"));
        assert_eq!(n("02079460018").unwrap(), "442079460018");
        assert_eq!(n("2079460018").unwrap(), "442079460018");
        assert_eq!(n("+33142685300").unwrap(), "33142685300");
        assert_eq!(n("0033142685300").unwrap(), "33142685300");
        assert!(
            normalize("0201", InboundFormat::National, None)
                .unwrap_err()
                .message()
                .contains("no country code")
        );
        // A country without a trunk prefix keeps a leading 0 (Italy's fixed numbers).
        assert_eq!(
            normalize("0612345678", InboundFormat::National, Some("39")).unwrap(),
            "390612345678"
        );
    }

    #[test]
    fn auto_detection_by_length() {
        let uk = |s| normalize(s, InboundFormat::Auto, Some("44"));
        assert_eq!(uk("02079460018").unwrap(), "442079460018", "trunk + 10");
        assert_eq!(uk("2079460018").unwrap(), "442079460018", "10 national");
        assert_eq!(uk("33142685300").unwrap(), "33142685300", "French E.164");
        assert_eq!(
            uk("4915112345678").unwrap(),
            "4915112345678",
            "German E.164"
        );
        assert!(uk("999999999999999").is_err());
        let us = |s| normalize(s, InboundFormat::Auto, Some("1"));
        assert_eq!(us("2125551234").unwrap(), "12125551234");
        assert_eq!(us("12125551234").unwrap(), "12125551234");
        assert_eq!(us("442079460018").unwrap(), "442079460018");
        assert!(
            normalize("123", InboundFormat::Auto, Some("999"))
                .unwrap_err()
                .message()
                .contains("country table")
        );
    }

    #[test]
    fn carrier_profiles() {
        let p = NumberProfile {
            strip: 0,
            tech_prefix: "9901#".into(),
            format: OutboundFormat::National,
            cli_format: OutboundFormat::Plus,
            country_code: Some("44".into()),
        };
        assert_eq!(p.destination("442079460018"), "9901#02079460018");
        assert_eq!(p.destination("33142685300"), "9901#0033142685300");
        assert_eq!(p.cli("12125551234"), "+12125551234");
        assert_eq!(p.cli("anonymous"), "anonymous");
        let us = NumberProfile {
            strip: 1,
            format: OutboundFormat::National,
            country_code: Some("1".into()),
            ..NumberProfile::default()
        };
        assert_eq!(
            us.destination("12125551234"),
            "125551234",
            "strip after format"
        );
        assert_eq!(
            format_number("442079460018", OutboundFormat::National, Some("1")),
            "011442079460018"
        );
        assert_eq!(
            NumberProfile::default().destination("442079460018"),
            "442079460018"
        );
    }
}
