//! Who may see and change what: the one access model of the API, and later of the panel and
//! the customer portal. A [`Scope`] is checked on the server for every route: `admin`
//! changes anything, `read` reads everything and changes nothing, `customer:ID` reads and
//! acts on that customer's own resources only (another customer's id is "not found", never
//! "forbidden", so nothing leaks).

use std::fmt;
use std::str::FromStr;

use crate::invalid::Invalid;
use crate::party::CustomerId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Admin,
    Read,
    Customer(CustomerId),
}

impl Scope {
    /// Whether this scope may change the switch's configuration and records (beyond a
    /// customer's own webhooks).
    pub fn can_write(self) -> bool {
        matches!(self, Scope::Admin)
    }

    /// Whether this scope may read what belongs to `customer`.
    pub fn sees_customer(self, customer: CustomerId) -> bool {
        match self {
            Scope::Admin | Scope::Read => true,
            Scope::Customer(own) => own == customer,
        }
    }

    /// The one customer this scope is bound to, if any: lists and exports are filtered to it.
    pub fn customer(self) -> Option<CustomerId> {
        match self {
            Scope::Customer(id) => Some(id),
            _ => None,
        }
    }

    /// Whether this scope sees the whole switch (carriers, settings, the block list, other
    /// customers).
    pub fn is_operator(self) -> bool {
        !matches!(self, Scope::Customer(_))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Admin => f.write_str("admin"),
            Scope::Read => f.write_str("read"),
            Scope::Customer(id) => write!(f, "customer:{}", id.0),
        }
    }
}

impl FromStr for Scope {
    type Err = Invalid;

    /// `admin`, `read` or `customer:ID`.
    fn from_str(s: &str) -> Result<Scope, Invalid> {
        let s = s.trim();
        match s {
            "admin" => Ok(Scope::Admin),
            "read" => Ok(Scope::Read),
            _ => s
                .strip_prefix("customer:")
                .and_then(|id| id.parse::<i64>().ok())
                .filter(|id| *id > 0)
                .map(|id| Scope::Customer(CustomerId(id)))
                .ok_or_else(|| {
                    Invalid::new(format!("{s:?} is not a scope (admin, read or customer:ID)"))
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_read_back_and_bound_what_they_see() {
        for s in ["admin", "read", "customer:7"] {
            assert_eq!(s.parse::<Scope>().unwrap().to_string(), s);
        }
        for bad in [
            "",
            "root",
            "customer:",
            "customer:0",
            "customer:-1",
            "customer:x",
        ] {
            assert!(bad.parse::<Scope>().is_err(), "{bad}");
        }
        let c = Scope::Customer(CustomerId(7));
        assert!(c.sees_customer(CustomerId(7)) && !c.sees_customer(CustomerId(8)));
        assert!(!c.can_write() && !c.is_operator());
        assert!(Scope::Read.sees_customer(CustomerId(8)) && !Scope::Read.can_write());
        assert!(Scope::Admin.can_write() && Scope::Admin.is_operator());
    }
}
