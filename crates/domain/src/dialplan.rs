//! Dialing plans (SPEC.md "Call admission", stage "dialing plan"): which destinations a
//! customer may call. Rules are tried by priority (lower first); the first that matches
//! decides; no match leaves the plan's default. Numbers are E.164 digits (normalised).

use crate::invalid::Invalid;
use serde::{Deserialize, Serialize};

/// A dialing plan's id in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DialPlanId(pub i64);

/// A destination pattern: digits as a prefix, or digits with `*` (any run of digits, also
/// none) and `?` (exactly one digit), then anchored at both ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pattern(String);

impl Pattern {
    /// Checks a pattern as typed (a leading `+` is dropped).
    pub fn parse(text: &str) -> Result<Pattern, Invalid> {
        let t = text.trim();
        let t = t.strip_prefix('+').unwrap_or(t);
        if t.is_empty()
            || t.len() > 32
            || !t
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'*' || b == b'?')
        {
            return Err(format!(
                "{text:?} is not a pattern (1 to 32 of: digits, `*` for any run, `?` for one digit)"
            )
            .into());
        }
        Ok(Pattern(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn is_glob(&self) -> bool {
        self.0.bytes().any(|b| b == b'*' || b == b'?')
    }

    /// Whether `number` (digits) matches.
    pub fn matches(&self, number: &str) -> bool {
        if !self.is_glob() {
            return number.starts_with(&self.0);
        }
        glob(self.0.as_bytes(), number.as_bytes())
    }
}

/// Anchored match with `*` and `?`: the classic two-pointer walk that remembers the last
/// `*` (linear in practice, never exponential).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// One rule of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialRule {
    pub id: i64,
    /// Lower is tried first.
    pub priority: i32,
    pub pattern: Pattern,
    pub allow: bool,
}

/// A named plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialPlan {
    pub id: DialPlanId,
    pub name: String,
    /// What a number no rule matches gets.
    pub default_allow: bool,
    /// Refuse premium-rate and international-network destinations ([`PREMIUM_PREFIXES`])
    /// before any rule.
    pub block_premium: bool,
    /// Sorted by priority, then id.
    pub rules: Vec<DialRule>,
}

/// Premium-rate and high-cost international-network ranges (E.164 prefixes) refused by
/// plans with `block_premium`: NANP 900/976, UK 09, French 089, German 0900, Italian 899,
/// Spanish 80x/905, Austrian 0900/0930, Swiss 090x, Australian 190, and the shared
/// international codes (881 satellite, 882/883 international networks, 870 Inmarsat, 979
/// international premium rate). Operators add their own with deny rules.
pub const PREMIUM_PREFIXES: &[&str] = &[
    "1900", "1976", "449", "3389", "49900", "39899", "34803", "34806", "34807", "34905", "43900",
    "43930", "41900", "41901", "41906", "61190", "881", "882", "883", "870", "979",
];

/// What a plan says about a destination, and why (for `vts route` and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub why: String,
}

impl DialPlan {
    pub fn verdict(&self, number: &str) -> Verdict {
        if self.block_premium
            && let Some(p) = PREMIUM_PREFIXES.iter().find(|p| number.starts_with(**p))
        {
            return Verdict {
                allowed: false,
                why: format!(
                    "premium destination {p} (plan {:?} blocks premium)",
                    self.name
                ),
            };
        }
        if let Some(rule) = self.rules.iter().find(|r| r.pattern.matches(number)) {
            return Verdict {
                allowed: rule.allow,
                why: format!(
                    "rule {} of plan {:?}: {} {} (priority {})",
                    rule.id,
                    self.name,
                    if rule.allow { "allow" } else { "deny" },
                    rule.pattern.as_str(),
                    rule.priority
                ),
            };
        }
        Verdict {
            allowed: self.default_allow,
            why: format!(
                "no rule of plan {:?} matches: its default is {}",
                self.name,
                if self.default_allow { "allow" } else { "deny" }
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: i64, priority: i32, pattern: &str, allow: bool) -> DialRule {
        DialRule {
            id,
            priority,
            pattern: Pattern::parse(pattern).unwrap(),
            allow,
        }
    }

    #[test]
    fn patterns_are_prefixes_or_anchored_globs() {
        let p = |s| Pattern::parse(s).unwrap();
        assert!(p("44").matches("442079460018"));
        assert!(!p("44").matches("4"));
        assert!(p("+44").matches("442079460018"));
        assert!(p("44*").matches("44"));
        assert!(p("44??").matches("4412"));
        assert!(!p("44??").matches("44123"), "anchored at the end");
        assert!(!p("4?").matches("345"), "anchored at the start");
        assert!(p("1*555????").matches("12125551234"));
        assert!(!p("1*555????").matches("1212555123"));
        assert!(p("*1234").matches("999991234"));
        assert!(p("4*4*4").matches("44114"));
        assert!(Pattern::parse("44x").is_err());
        assert!(Pattern::parse("").is_err());
    }

    #[test]
    fn first_rule_by_priority_then_default_and_premium() {
        let plan = DialPlan {
            id: DialPlanId(1),
            name: "uk-only".into(),
            default_allow: false,
            block_premium: true,
            rules: vec![rule(7, 10, "447*", false), rule(3, 20, "44", true)],
        };
        assert!(plan.verdict("442079460018").allowed);
        let mobile = plan.verdict("447700900123");
        assert!(!mobile.allowed);
        assert!(mobile.why.contains("rule 7"), "{}", mobile.why);
        let france = plan.verdict("33142685300");
        assert!(!france.allowed && france.why.contains("default is deny"));
        let premium = plan.verdict("449011234567");
        assert!(!premium.allowed && premium.why.contains("premium"));
    }
}
