//! Rate sheets: the CSV a carrier sends (or an operator writes for a customer or a rate
//! plan): `prefix, rate per minute, connection fee, increment s, minimum s, effective
//! date`, an optional header row, `#` comments. Every row is checked before anything is
//! imported; an error names its line and field ([`SheetError`]), so the CLI prints it and
//! the API can return it as a field error.

use std::io::Read;

use domain::{Money, Rate};

/// Why a rate sheet is refused.
#[derive(Debug, thiserror::Error)]
pub enum SheetError {
    /// Not CSV (or not UTF-8).
    #[error(transparent)]
    Csv(#[from] csv::Error),
    #[error(
        "line {line}: {count} fields; expected prefix, rate[, connection fee, increment, minimum, effective date]"
    )]
    Fields { line: u64, count: usize },
    /// A field's value is refused.
    #[error("line {line}: {field}: {problem}")]
    Field {
        line: u64,
        field: &'static str,
        problem: String,
    },
    #[error("line {line}: prefix {prefix} with the same effective date appears twice")]
    Duplicate { line: u64, prefix: String },
    #[error("no rates in the file")]
    Empty,
}

impl SheetError {
    /// The line of the sheet the error is on, when it is on one.
    pub fn line(&self) -> Option<u64> {
        match self {
            SheetError::Fields { line, .. }
            | SheetError::Field { line, .. }
            | SheetError::Duplicate { line, .. } => Some(*line),
            SheetError::Csv(e) => e.position().map(|p| p.line()),
            SheetError::Empty => None,
        }
    }
}

/// Reads a whole rate sheet; the rates in file order.
pub fn parse(input: impl Read) -> Result<Vec<Rate>, SheetError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(input);
    let mut rates: Vec<Rate> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record?;
        let line = record.position().map_or(i as u64 + 1, |p| p.line());
        let field = |n: usize| record.get(n).unwrap_or("");
        if i == 0
            && !field(0)
                .trim_start_matches('+')
                .starts_with(|c: char| c.is_ascii_digit())
        {
            continue; // a header row
        }
        if record.len() < 2 || record.len() > 6 {
            return Err(SheetError::Fields {
                line,
                count: record.len(),
            });
        }
        let at = |field: &'static str| {
            move |problem: domain::Invalid| SheetError::Field {
                line,
                field,
                problem: problem.to_string(),
            }
        };
        let prefix = domain::checked_prefix(field(0)).map_err(at("prefix"))?;
        let per_minute = Money::parse(field(1)).map_err(at("rate"))?;
        let connection_fee = match field(2) {
            "" => Money(0),
            f => Money::parse(f).map_err(at("connection fee"))?,
        };
        let whole = |n: usize, what: &'static str, default: u32, min: u32| match field(n) {
            "" => Ok(default),
            f => f
                .parse::<u32>()
                .ok()
                .filter(|v| (min..=3600).contains(v))
                .ok_or_else(|| {
                    at(what)(domain::Invalid::new(format!(
                        "{f:?} is not a whole number from {min} to 3600"
                    )))
                }),
        };
        let increment_s = whole(3, "increment", 1, 1)?;
        let minimum_s = whole(4, "minimum", 0, 0)?;
        let effective_ms = match field(5) {
            "" => 0,
            f => domain::parse_instant(f).map_err(at("effective date"))?,
        };
        if let Some(dup) = rates
            .iter()
            .find(|r| r.prefix == prefix && r.effective_ms == effective_ms)
        {
            return Err(SheetError::Duplicate {
                line,
                prefix: dup.prefix.clone(),
            });
        }
        rates.push(Rate {
            prefix,
            per_minute,
            connection_fee,
            increment_s,
            minimum_s,
            effective_ms,
        });
    }
    if rates.is_empty() {
        return Err(SheetError::Empty);
    }
    Ok(rates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sheet_with_a_header_comments_and_defaults() {
        let csv = "prefix,rate,connection_fee,increment,minimum,effective\n\
                   44,0.0100,0.01,60,60,2026-12-01\n\
                   447, 0.05 ,,1,,\n\
                   # a comment\n\
                   33,0.02,0,6,30,2026-12-01T12:00:00Z\n";
        let rates = parse(csv.as_bytes()).unwrap();
        assert_eq!(rates.len(), 3);
        assert_eq!(rates[0].per_minute, Money(10_000));
        assert_eq!(rates[0].connection_fee, Money(10_000));
        assert_eq!((rates[0].increment_s, rates[0].minimum_s), (60, 60));
        assert_eq!(rates[0].effective_ms, 1_796_083_200_000);
        assert_eq!((rates[1].increment_s, rates[1].effective_ms), (1, 0));
        assert_eq!(rates[2].effective_ms, 1_796_083_200_000 + 12 * 3_600_000);
    }

    #[test]
    fn every_refusal_names_its_line_and_field() {
        for (bad, needle, line) in [
            ("44,abc\n", "line 1: rate", Some(1)),
            ("44,0.01\n4x,0.01\n", "line 2: prefix", Some(2)),
            ("44,0.01,0,0\n", "line 1: increment", Some(1)),
            (
                "44,0.01,0,1,0,tomorrow\n",
                "line 1: effective date",
                Some(1),
            ),
            (
                "44,0.01\n44,0.02\n",
                "line 2: prefix 44 with the same effective date",
                Some(2),
            ),
            ("44\n", "line 1: 1 fields", Some(1)),
            ("prefix,rate\n", "no rates", None),
        ] {
            let e = parse(bad.as_bytes()).unwrap_err();
            assert!(e.to_string().contains(needle), "{bad:?}: {e}");
            assert_eq!(e.line(), line, "{bad:?}");
        }
        let e = parse(&b"44,0.01,0,1,0,2026-12-01\n44,0.5,\xff\n"[..]).unwrap_err();
        assert!(matches!(e, SheetError::Csv(_)), "{e:?}");
    }
}
