//! The routing planner: what a call of a customer to a number gets, in the order the switch
//! decides it. The customer by source address ([`identify`]), its status, its number read as E.164 ([`numbers`]), its dialing
//! plan ([`dial_plan`]), the carriers in the customer's routing order with the reason each is
//! skipped ([`candidates`]: health, LCR rates), the attempt order with equal priorities
//! shared by weight ([`route`]), and the per-carrier decision made before an attempt is sent
//! ([`pass_over`]). The engine's admission and failover call these, and so does
//! [`simulate`] (`vts route`, the API's route simulator): one code path, so a simulation
//! cannot drift from what live calls do. What depends on the moment (channels and CPS in
//! use, balances, the offer's codecs) is the engine's.

use std::net::IpAddr;

use crate::{
    Carrier, Customer, CustomerStatus, Directory, Health, Money, PrefixVerdict, Reject,
    RoutingMode, Verdict,
};

/// Stage "identify": the customer a source address belongs to.
pub fn identify(directory: &Directory, source: IpAddr) -> Result<&Customer, Reject> {
    directory.identify(source).ok_or(Reject::IpNotAuthorized)
}

/// Stage "status": every call reads the customer's current state (a suspension takes effect
/// on the next call, not at the next restart).
pub fn status(customer: &Customer) -> Result<(), Reject> {
    match (customer.active, customer.status) {
        (_, CustomerStatus::Blocked) => Err(Reject::AccountBlocked),
        (false, _) | (_, CustomerStatus::Suspended) => Err(Reject::AccountSuspended),
        (true, CustomerStatus::Active) => Ok(()),
    }
}

/// The dialled number and CLI as the customer's number format reads them (E.164 digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbers {
    pub callee: String,
    /// The forced CLI, else the caller normalised, else the caller as received (a CLI that
    /// is not a number, e.g. `anonymous`, is not a reason to refuse a call).
    pub caller: String,
}

/// Stage "numbers" (before any stage that reads the destination): 484 Address Incomplete
/// when the dialled number cannot be read.
pub fn numbers(customer: &Customer, callee: &str, caller: &str) -> Result<Numbers, Reject> {
    let cc = customer.country_code.as_deref();
    let callee = crate::numbers::normalize(callee, customer.number_format, cc)
        .map_err(|_| Reject::InvalidNumber)?;
    let caller = match &customer.forced_cli {
        Some(cli) => cli.clone(),
        None => crate::numbers::normalize(caller, customer.number_format, cc)
            .unwrap_or_else(|_| caller.to_string()),
    };
    Ok(Numbers { callee, caller })
}

/// Stage "dialing plan": the customer's plan's verdict (no plan: every destination).
pub fn dial_plan(directory: &Directory, customer: &Customer, number: &str) -> Result<(), Reject> {
    let verdict = customer
        .dial_plan
        .and_then(|id| directory.dial_plan(id))
        .map(|plan| plan.verdict(number));
    match verdict {
        Some(v) if !v.allowed => Err(Reject::DestinationNotAllowed),
        _ => Ok(()),
    }
}

/// A carrier as routing sees it for one call: kept (with its cost under LCR) or why not.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub carrier: Carrier,
    pub cost: Option<Money>,
    pub skipped: Option<String>,
}

/// Every active carrier for a call of `customer` to `number` (E.164) at `now_ms`, in the
/// order the customer's routing mode gives (before weighted sharing), each kept or skipped
/// with its reason: down carriers, and under LCR carriers with no rate for the number or a
/// rate above the customer's own.
pub fn candidates(
    directory: &Directory,
    customer: &Customer,
    number: &str,
    now_ms: i64,
    health: &dyn Fn(&Carrier) -> Health,
) -> Vec<Candidate> {
    let sell = directory
        .customer_rates(customer.id)
        .and_then(|t| t.lookup(number, now_ms))
        .map(|r| r.per_minute);
    let mut out: Vec<Candidate> = directory
        .routes()
        .iter()
        .map(|carrier| {
            let mut cost = None;
            let skipped = if !health(carrier).takes_calls() {
                Some("down (OPTIONS probes)".to_string())
            } else if customer.routing == RoutingMode::Lcr {
                match directory
                    .carrier_rates(carrier.id)
                    .and_then(|t| t.lookup(number, now_ms))
                {
                    None => Some("no rate for this destination".to_string()),
                    Some(r) => {
                        cost = Some(r.per_minute);
                        sell.filter(|s| r.per_minute > *s).map(|s| {
                            format!(
                                "rate {} {} is above the customer's {s}",
                                r.prefix, r.per_minute
                            )
                        })
                    }
                }
            } else {
                None
            };
            Candidate {
                carrier: carrier.clone(),
                cost,
                skipped,
            }
        })
        .collect();
    if customer.routing == RoutingMode::Lcr {
        // Cheapest first; the directory's priority order breaks ties (a stable sort).
        out.sort_by_key(|c| c.cost.unwrap_or(Money(i64::MAX)));
    }
    out
}

/// Stage "routing": the carriers to try, in order. Priority mode: higher priority first;
/// within one priority a weighted random order, so that carriers of equal priority share
/// the calls by weight (weights below 1 count as 1). LCR: cheapest first.
pub fn route(
    directory: &Directory,
    customer: &Customer,
    number: &str,
    now_ms: i64,
    health: &dyn Fn(&Carrier) -> Health,
    rng: &mut fastrand::Rng,
) -> Result<Vec<Carrier>, Reject> {
    let mut routes: Vec<Carrier> = candidates(directory, customer, number, now_ms, health)
        .into_iter()
        .filter(|c| c.skipped.is_none())
        .map(|c| c.carrier)
        .collect();
    if routes.is_empty() {
        return Err(Reject::NoRoutes);
    }
    if customer.routing == RoutingMode::Priority {
        share_by_weight(&mut routes, rng);
    }
    Ok(routes)
}

/// Reorders each run of equal priority (the directory keeps carriers sorted by priority) by
/// weighted random sampling without replacement (Efraimidis and Spirakis: key u^(1/w), the
/// highest key first): a carrier is first with probability weight / total weight.
fn share_by_weight(routes: &mut [Carrier], rng: &mut fastrand::Rng) {
    for group in routes.chunk_by_mut(|a, b| a.priority == b.priority) {
        if group.len() < 2 {
            continue;
        }
        let mut keys: Vec<f64> = group
            .iter()
            .map(|c| (1.0 - rng.f64()).powf(1.0 / f64::from(c.weight.max(1)))) // u in (0, 1]
            .collect();
        // Selection sort by key, highest first, swapping carriers in place (groups are a
        // handful of carriers; no carrier is cloned).
        for i in 0..group.len() {
            let best = (i..group.len())
                .max_by(|&a, &b| keys[a].total_cmp(&keys[b]))
                .unwrap_or(i);
            keys.swap(i, best);
            group.swap(i, best);
        }
    }
}

/// The share of first attempts `carrier` gets among the carriers of its priority in
/// `routes` (`None` when it is alone at its priority).
pub fn first_share(routes: &[Carrier], carrier: &Carrier) -> Option<f64> {
    let peers: Vec<&Carrier> = routes
        .iter()
        .filter(|c| c.priority == carrier.priority)
        .collect();
    if peers.len() < 2 {
        return None;
    }
    let total: i64 = peers.iter().map(|c| i64::from(c.weight.max(1))).sum();
    Some(f64::from(carrier.weight.max(1)) / total as f64)
}

/// Why a carrier of a call's route list gets no attempt, decided before anything is sent
/// to it: the one decision of live calls (`Engine::next_attempt`) and of `vts route`
/// ([`simulate`]), so the simulator cannot drift from what calls do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassOver {
    /// The destination is on the carrier's deny list.
    Denied,
    /// The carrier has an allow list without the destination.
    NotAllowed,
    /// `sip.max_attempts` attempts were sent already: the call goes no further.
    AttemptCap(u32),
    /// The carrier's host is not an IP address (the switch does not resolve names).
    HostNotAddress,
}

impl PassOver {
    /// The reason as `vts route` prints it.
    pub fn reason(&self) -> String {
        match self {
            PassOver::Denied => "destination on its deny list".into(),
            PassOver::NotAllowed => "destination not on its allow list".into(),
            PassOver::AttemptCap(n) => format!("attempt cap ({n}) reached"),
            PassOver::HostNotAddress => "host is not an IP address".into(),
        }
    }

    /// What a call that found no carrier answers because of this (the first such reason
    /// of a call is the one it ends with, unless a carrier answered).
    pub fn reject(&self) -> Reject {
        match self {
            PassOver::Denied | PassOver::NotAllowed => Reject::NoRouteForDestination,
            PassOver::AttemptCap(_) | PassOver::HostNotAddress => Reject::CarrierUnusable,
        }
    }
}

/// Whether `carrier` gets no attempt for `destination` (E.164) after `sent` attempts of the
/// call, and why; checked in this order. What depends on the moment (its channels and CPS,
/// the offer's codecs) is checked by live calls only.
pub fn pass_over(
    carrier: &Carrier,
    destination: &str,
    sent: u32,
    max_attempts: u32,
) -> Option<PassOver> {
    if sent >= max_attempts {
        return Some(PassOver::AttemptCap(max_attempts));
    }
    match carrier.prefix_verdict(destination) {
        PrefixVerdict::Denied => return Some(PassOver::Denied),
        PrefixVerdict::NotAllowed => return Some(PassOver::NotAllowed),
        PrefixVerdict::Allowed => {}
    }
    carrier_ip(carrier)
        .is_none()
        .then_some(PassOver::HostNotAddress)
}

/// The carrier's host as an IP address (`[v6]` accepted), if it is one.
pub fn carrier_ip(carrier: &Carrier) -> Option<IpAddr> {
    carrier
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// What the switch would do with a call of `customer` to `number` (`vts route`): the same
/// stages and carrier checks as a live call, minus the ones that depend on the moment
/// (channels and CPS in use), which the steps name instead.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// The destination as received.
    pub received: String,
    /// The destination as routing sees it (E.164), when it could be read.
    pub number: Option<String>,
    /// The customer's dialing plan's verdict, if it has a plan.
    pub plan: Option<Verdict>,
    /// The refusal of a stage before routing, if any.
    pub refused: Option<Reject>,
    /// Every active carrier in routing order.
    pub steps: Vec<Step>,
    /// The refusal when no carrier would get an attempt.
    pub unroutable: Option<Reject>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub carrier: Carrier,
    /// `None`: the call would be offered to this carrier (attempt number `attempt`).
    pub skipped: Option<String>,
    pub attempt: Option<u32>,
    /// The carrier's rate for the destination (LCR).
    pub cost: Option<Money>,
    /// The destination and CLI as this carrier would get them.
    pub sent: (String, String),
}

pub fn simulate(
    directory: &Directory,
    customer: &Customer,
    number: &str,
    caller: &str,
    now_ms: i64,
    max_attempts: u32,
) -> Simulation {
    let received = number.trim().to_string();
    let mut refused = status(customer).err();
    let numbers = numbers(customer, &received, caller);
    let e164 = numbers.as_ref().ok().map(|n| n.callee.clone());
    if let Err(r) = &numbers {
        refused = refused.or(Some(*r));
    }
    let plan = e164.as_ref().and_then(|n| {
        customer
            .dial_plan
            .and_then(|id| directory.dial_plan(id))
            .map(|p| p.verdict(n))
    });
    if plan.as_ref().is_some_and(|v| !v.allowed) {
        refused = refused.or(Some(Reject::DestinationNotAllowed));
    }
    let mut steps = Vec::new();
    // Some carrier passes health and rates (else 503 No Routes, before any prefix rule).
    let mut routable = false;
    if let Ok(numbers) = &numbers {
        let health = |c: &Carrier| directory.health.get(&c.id).copied().unwrap_or_default();
        let mut attempts = 0;
        for c in candidates(directory, customer, &numbers.callee, now_ms, &health) {
            let carrier = c.carrier;
            if c.skipped.is_none() {
                routable = true;
            }
            let skipped = c.skipped.or_else(|| {
                pass_over(&carrier, &numbers.callee, attempts, max_attempts).map(|p| p.reason())
            });
            let attempt = skipped.is_none().then(|| {
                attempts += 1;
                attempts
            });
            let sent = (
                carrier.numbers.destination(&numbers.callee),
                carrier.numbers.cli(&numbers.caller),
            );
            steps.push(Step {
                carrier,
                skipped,
                attempt,
                cost: c.cost,
                sent,
            });
        }
    }
    let unroutable = if steps.iter().any(|s| s.attempt.is_some()) {
        None
    } else if routable {
        Some(Reject::NoRouteForDestination)
    } else {
        Some(Reject::NoRoutes)
    };
    Simulation {
        received,
        number: e164,
        plan,
        refused,
        steps,
        unroutable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CarrierId, CustomerId, Transport};

    #[test]
    fn carriers_are_passed_over_for_the_cap_then_their_prefixes_then_their_address() {
        let c = |host: &str, allow: &[&str], deny: &[&str]| Carrier {
            host: host.into(),
            allow: allow.iter().map(|p| p.to_string()).collect(),
            deny: deny.iter().map(|p| p.to_string()).collect(),
            ..Carrier::default()
        };
        let open = c("192.0.2.1", &[], &[]);
        assert_eq!(pass_over(&open, "34911234567", 0, 3), None);
        assert_eq!(
            pass_over(&c("[2001:db8::1]", &[], &[]), "34911234567", 2, 3),
            None
        );
        assert_eq!(
            pass_over(&open, "34911234567", 3, 3),
            Some(PassOver::AttemptCap(3))
        );
        let denied = c("carrier.example", &["34"], &["3491"]);
        assert_eq!(
            pass_over(&denied, "34911234567", 0, 3),
            Some(PassOver::Denied)
        );
        assert_eq!(
            pass_over(&denied, "44201234567", 0, 3),
            Some(PassOver::NotAllowed)
        );
        assert_eq!(
            pass_over(&denied, "34611234567", 0, 3),
            Some(PassOver::HostNotAddress)
        );
        assert_eq!(PassOver::NotAllowed.reject(), Reject::NoRouteForDestination);
        assert_eq!(
            PassOver::HostNotAddress.reason(),
            "host is not an IP address"
        );
    }

    #[test]
    fn equal_priorities_share_first_attempts_by_weight() {
        let mk = |id: i64, priority: i32, weight: i32| Carrier {
            id: CarrierId(id),
            name: format!("c{id}"),
            host: "127.0.0.1".into(),
            port: 5060,
            transport: Transport::Udp,
            priority,
            weight,
            active: true,
            max_channels: None,
            max_cps: None,
            first_response_ms: None,
            ring_timeout_s: None,
            allow: Vec::new(),
            deny: Vec::new(),
            ..Carrier::default()
        };
        let mut rng = fastrand::Rng::with_seed(7);
        let base = vec![mk(1, 10, 3), mk(2, 10, 1), mk(3, 5, 0)];
        let mut first = [0u32; 2];
        for _ in 0..10_000 {
            let mut routes = base.clone();
            share_by_weight(&mut routes, &mut rng);
            first[(routes[0].id.0 - 1) as usize] += 1;
            assert_eq!(routes[2].id.0, 3, "a lower priority never moves up");
        }
        // 3:1 → 75 % first; 10,000 draws: sd 0.43 %.
        assert!((7_300..=7_700).contains(&first[0]), "{first:?}");
        assert_eq!(first_share(&base, &base[0]), Some(0.75));
        assert_eq!(first_share(&base, &base[2]), None);
    }

    #[test]
    fn identify_then_route() {
        let customer = Customer {
            id: CustomerId(1),
            name: "acme".into(),
            active: true,
            ips: vec!["192.0.2.0/24".parse().unwrap()],
            max_channels: None,
            max_cps: None,
            status: CustomerStatus::Active,
            status_reason: None,
            ..Customer::default()
        };
        let carrier = Carrier {
            first_response_ms: None,
            ring_timeout_s: None,
            id: CarrierId(9),
            name: "up".into(),
            host: "198.51.100.1".into(),
            port: 5060,
            transport: Transport::Udp,
            priority: 1,
            weight: 1,
            active: true,
            max_channels: None,
            max_cps: None,
            allow: Vec::new(),
            deny: Vec::new(),
            ..Carrier::default()
        };
        let none = Directory::new(1, vec![customer.clone()], vec![]);
        assert_eq!(
            identify(&none, "192.0.2.9".parse().unwrap()).unwrap().id,
            CustomerId(1)
        );
        assert_eq!(
            route(
                &none,
                &customer,
                "4420",
                0,
                &|_| Health::Up,
                &mut fastrand::Rng::new()
            )
            .unwrap_err(),
            Reject::NoRoutes
        );
        assert_eq!(
            identify(&none, "203.0.113.1".parse().unwrap()).unwrap_err(),
            Reject::IpNotAuthorized
        );
        let d = Directory::new(2, vec![customer.clone()], vec![carrier]);
        let up = |_: &Carrier| Health::Up;
        let down = |_: &Carrier| Health::Down;
        let mut rng = fastrand::Rng::new();
        assert_eq!(
            route(&d, &customer, "4420", 0, &up, &mut rng)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            route(&d, &customer, "4420", 0, &down, &mut rng).unwrap_err(),
            Reject::NoRoutes,
            "a down carrier gets no calls"
        );
        assert_eq!(
            Reject::IpNotAuthorized.reply(),
            (403, "Forbidden - IP Not Authorized")
        );
    }
}
