//! Admission of a new INVITE: an ordered list of stages, each of which lets the call continue
//! or refuses it with a [`Reject`] (`domain::Reject`: the switch's one reply table).
//!
//! Stages today: identify the customer by source address, its status, global limits,
//! customer CPS (token bucket),
//! customer channels, then route (carriers in priority order). The stages of SPEC.md's admission table (block list, flood, status, limits, dialing
//! plan) slot in here, in that order.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use cluster::{Limiter, Minutes, Period, RESERVED_MS, Scope};

pub use domain::Reject;
use domain::{
    BlockList, Carrier, Customer, CustomerId, CustomerStatus, Directory, Health, LimitKind, Money,
    PrefixVerdict, RoutingMode, Settings,
};

/// Stage "flood": INVITEs a second from one source address, a token bucket per address
/// (`cluster`), before identification so that unknown sources are counted too. Whitelisted
/// addresses are never blocked automatically.
pub(crate) fn flood(
    limiter: &mut dyn Limiter,
    directory: &Directory,
    source: IpAddr,
    now: Instant,
) -> Result<(), Reject> {
    if directory.whitelisted(source) {
        return Ok(());
    }
    match directory.settings.flood_threshold {
        Some(rate) if !limiter.take(Scope::Source(aggregate(source)), rate, now) => {
            Err(Reject::RateLimited)
        }
        _ => Ok(()),
    }
}

/// The address a source counts as for floods, failures and automatic blocks: an IPv6
/// source as its /64 (one host holds a whole /64 and can send from any address of it), an
/// IPv4-mapped one as IPv4.
pub(crate) fn aggregate(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Failures per source address in a sliding window: the times of the last `threshold + 1`
/// at most, so "more than N in W seconds" is exact (no window that resets or never does).
#[derive(Debug)]
pub(crate) struct FailureCounter {
    by_source: HashMap<IpAddr, VecDeque<Instant>>,
    /// Map size that triggers the next sweep of addresses with no failure left in the
    /// window (a scan from many addresses cannot grow the map without bound).
    sweep_at: usize,
}

impl Default for FailureCounter {
    fn default() -> Self {
        FailureCounter {
            by_source: HashMap::new(),
            sweep_at: 1024,
        }
    }
}

impl FailureCounter {
    /// Records a failure of `source` at `now`; `true` when that makes more than `threshold`
    /// within `window` (the count then starts again).
    pub(crate) fn exceeded(
        &mut self,
        source: IpAddr,
        now: Instant,
        threshold: u32,
        window: Duration,
    ) -> bool {
        let source = aggregate(source);
        let live = |t: &Instant| now.saturating_duration_since(*t) < window;
        if self.by_source.len() >= self.sweep_at {
            self.by_source
                .retain(|_, fails| fails.back().is_some_and(live));
            self.sweep_at = (self.by_source.len() * 2).max(1024);
        }
        let fails = self.by_source.entry(source).or_default();
        while fails.front().is_some_and(|t| !live(t)) {
            fails.pop_front();
        }
        fails.push_back(now);
        if fails.len() <= threshold as usize {
            return false;
        }
        self.by_source.remove(&source);
        true
    }

    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.by_source.len()
    }
}

/// Automatic blocks (flood, auth failures) the engine holds itself until the store's entry
/// reaches the directory: from the first refused INVITE on, with no gap for the database
/// round trip. Once the directory has the entry (or after a grace of a few seconds, should a
/// reload be missed or the database write fail) the store alone decides, so `vts block
/// remove` lifts the block everywhere.
#[derive(Debug, Default)]
pub(crate) struct PendingBlocks {
    /// End (epoch ms) and kind of each pending block.
    until: HashMap<IpAddr, (i64, &'static str)>,
    /// The block-list version last swept against.
    swept: i64,
}

impl PendingBlocks {
    /// Longest a block is held here without the store's copy.
    const GRACE_MS: i64 = 5_000;

    /// Holds a block of `ip` (`kind`: `flood` or `auth_fail`); `false` when one was held.
    pub(crate) fn add(&mut self, ip: IpAddr, kind: &'static str, now_ms: i64) -> bool {
        let ip = aggregate(ip);
        self.until.retain(|_, (end, _)| *end > now_ms);
        self.until
            .insert(ip, (now_ms + Self::GRACE_MS, kind))
            .is_none()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.until.is_empty()
    }

    /// The addresses held (IPv6 ones as their /64's first address) with the end of each
    /// (epoch ms).
    pub(crate) fn held(&self) -> impl Iterator<Item = (IpAddr, i64)> + '_ {
        self.until.iter().map(|(ip, (end, _))| (*ip, *end))
    }

    /// Drops the blocks that ended and, on a new block-list version, those it holds.
    pub(crate) fn sweep(&mut self, blocks: &BlockList, now_ms: i64) {
        if self.until.is_empty() {
            return;
        }
        let new_version = blocks.version() != self.swept;
        self.swept = blocks.version();
        self.until.retain(|ip, (end, _)| {
            *end > now_ms && !(new_version && blocks.blocking(*ip, now_ms).is_some())
        });
    }

    /// The kind of pending block on `ip`, if any (after a [`sweep`](Self::sweep)).
    pub(crate) fn blocking(
        &mut self,
        blocks: &BlockList,
        ip: IpAddr,
        now_ms: i64,
    ) -> Option<&'static str> {
        self.sweep(blocks, now_ms);
        self.until
            .get(&aggregate(ip))
            .filter(|(end, _)| *end > now_ms)
            .map(|(_, kind)| *kind)
    }
}

/// Stage "identify": the customer a source address belongs to.
pub(crate) fn identify(directory: &Directory, source: IpAddr) -> Result<&Customer, Reject> {
    directory.identify(source).ok_or(Reject::IpNotAuthorized)
}

/// Stage "status": every call reads the customer's current state (a suspension takes effect
/// on the next call, not at the next restart).
pub(crate) fn status(customer: &Customer) -> Result<(), Reject> {
    match (customer.active, customer.status) {
        (_, CustomerStatus::Blocked) => Err(Reject::AccountBlocked),
        (false, _) | (_, CustomerStatus::Suspended) => Err(Reject::AccountSuspended),
        (true, CustomerStatus::Active) => Ok(()),
    }
}

/// Stage "global limits", CPS part: the switch's new calls per second, counted after
/// identification so that unknown sources cannot use up the budget (the channel part is a
/// `cluster` lease taken by the engine).
pub(crate) fn global_cps(
    limiter: &mut dyn Limiter,
    settings: &Settings,
    now: Instant,
) -> Result<(), Reject> {
    match settings.global_max_cps {
        Some(rate) if !limiter.take(Scope::Global, rate, now) => Err(Reject::SystemCps),
        _ => Ok(()),
    }
}

/// Stage "customer CPS": a token bucket per customer (`cluster`), refilled continuously.
pub(crate) fn customer_cps(
    limiter: &mut dyn Limiter,
    customer: &Customer,
    now: Instant,
) -> Result<(), Reject> {
    match customer.max_cps {
        Some(rate) if !limiter.take(Scope::Customer(customer.id.0), rate, now) => {
            Err(Reject::CpsLimit)
        }
        _ => Ok(()),
    }
}

/// Stage "minutes": the customer's daily and monthly caps, with its calls in progress
/// counted (`cluster::Minutes`: each at least a reserved minute); this call would reserve
/// one more minute.
pub(crate) fn minutes(
    minutes: &dyn Minutes,
    customer: &Customer,
    now_ms: i64,
) -> Result<(), Reject> {
    for (cap, period, reject) in [
        (
            customer.daily_minutes,
            Period::day_of(customer.local_ms(now_ms)),
            Reject::DailyMinutes,
        ),
        (
            customer.monthly_minutes,
            Period::month_of(customer.local_ms(now_ms)),
            Reject::MonthlyMinutes,
        ),
    ] {
        if let Some(cap) = cap
            && minutes.used(customer.id.0, period, now_ms) + RESERVED_MS > i64::from(cap) * 60_000
        {
            return Err(reject);
        }
    }
    Ok(())
}

/// Stage "balance": a prepaid customer needs a balance above zero, a postpaid one above
/// minus its credit limit (`billing.refuse_code` picks 402 or 403).
pub(crate) fn balance(
    customer: &Customer,
    balance: Money,
    settings: &Settings,
) -> Result<(), Reject> {
    if customer.may_spend(balance) {
        Ok(())
    } else {
        Err(no_money(settings))
    }
}

/// Stage "balance", once the number is read: what is left must pay the call's first
/// increment (its minimum and connection fee) at the customer's price for the number, or
/// the call would be cut as soon as it is answered. (A price that is a rate plan's markup
/// on the carrier's cost is known only per carrier; it is checked when the call is up.)
pub(crate) fn first_increment(
    customer: &Customer,
    balance: Money,
    first: Option<Money>,
    settings: &Settings,
) -> Result<(), Reject> {
    match (customer.spendable(balance), first) {
        (Some(left), Some(first)) if left < first => Err(no_money(settings)),
        _ => Ok(()),
    }
}

/// The refusal for want of money (`billing.refuse_code` picks 402 or 403).
fn no_money(settings: &Settings) -> Reject {
    if settings.balance_refuse_code == 403 {
        Reject::InsufficientBalance
    } else {
        Reject::PaymentRequired
    }
}

/// Limit warnings already given, per customer and limit, with the window they were given
/// in: one per window, not one per call.
#[derive(Debug, Default)]
pub(crate) struct Warnings {
    given: HashMap<(CustomerId, LimitKind), i64>,
}

impl Warnings {
    /// `true` the first time in `window`.
    pub(crate) fn once(&mut self, customer: CustomerId, kind: LimitKind, window: i64) -> bool {
        self.given.insert((customer, kind), window) != Some(window)
    }

    /// Lets the next [`once`](Self::once) warn again.
    pub(crate) fn rearm(&mut self, customer: CustomerId, kind: LimitKind) {
        self.given.remove(&(customer, kind));
    }
}

/// The dialled number and CLI as the customer's number format reads them (E.164 digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Numbers {
    pub callee: String,
    /// The forced CLI, else the caller normalised, else the caller as received (a CLI that
    /// is not a number, e.g. `anonymous`, is not a reason to refuse a call).
    pub caller: String,
}

/// Stage "numbers" (before any stage that reads the destination): 484 Address Incomplete
/// when the dialled number cannot be read.
pub(crate) fn numbers(customer: &Customer, callee: &str, caller: &str) -> Result<Numbers, Reject> {
    let cc = customer.country_code.as_deref();
    let callee = domain::numbers::normalize(callee, customer.number_format, cc)
        .map_err(|_| Reject::InvalidNumber)?;
    let caller = match &customer.forced_cli {
        Some(cli) => cli.clone(),
        None => domain::numbers::normalize(caller, customer.number_format, cc)
            .unwrap_or_else(|_| caller.to_string()),
    };
    Ok(Numbers { callee, caller })
}

/// Stage "dialing plan": the customer's plan's verdict (no plan: every destination).
pub(crate) fn dial_plan(
    directory: &Directory,
    customer: &Customer,
    number: &str,
) -> Result<(), Reject> {
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
pub(crate) struct Candidate {
    pub carrier: Carrier,
    pub cost: Option<Money>,
    pub skipped: Option<String>,
}

/// Every active carrier for a call of `customer` to `number` (E.164) at `now_ms`, in the
/// order the customer's routing mode gives (before weighted sharing), each kept or skipped
/// with its reason: down carriers, and under LCR carriers with no rate for the number or a
/// rate above the customer's own.
pub(crate) fn candidates(
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
pub(crate) fn route(
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
pub(crate) enum PassOver {
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
    pub(crate) fn reason(&self) -> String {
        match self {
            PassOver::Denied => "destination on its deny list".into(),
            PassOver::NotAllowed => "destination not on its allow list".into(),
            PassOver::AttemptCap(n) => format!("attempt cap ({n}) reached"),
            PassOver::HostNotAddress => "host is not an IP address".into(),
        }
    }

    /// What a call that found no carrier answers because of this (the first such reason
    /// of a call is the one it ends with, unless a carrier answered).
    pub(crate) fn reject(&self) -> Reject {
        match self {
            PassOver::Denied | PassOver::NotAllowed => Reject::NoRouteForDestination,
            PassOver::AttemptCap(_) | PassOver::HostNotAddress => Reject::CarrierUnusable,
        }
    }
}

/// Whether `carrier` gets no attempt for `destination` (E.164) after `sent` attempts of the
/// call, and why; checked in this order. What depends on the moment (its channels and CPS,
/// the offer's codecs) is checked by live calls only.
pub(crate) fn pass_over(
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
pub(crate) fn carrier_ip(carrier: &Carrier) -> Option<IpAddr> {
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
    pub plan: Option<domain::Verdict>,
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
    use domain::{CarrierId, CustomerId, Transport};

    #[test]
    fn more_than_5_failures_in_600_s_exceed_and_older_ones_expire() {
        let mut f = FailureCounter::default();
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let other: IpAddr = "198.51.100.8".parse().unwrap();
        let w = Duration::from_secs(600);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        for s in 0..5 {
            assert!(!f.exceeded(ip, at(s * 100), 5, w), "failure {}", s + 1);
        }
        assert!(!f.exceeded(other, at(450), 5, w), "counted per address");
        // The 6th comes 600 s after the 1st: the 1st has left the window.
        assert!(!f.exceeded(ip, at(600), 5, w));
        // The 7th: six within 600 s (100..=650).
        assert!(f.exceeded(ip, at(650), 5, w));
        // Then the count starts again.
        assert!(!f.exceeded(ip, at(651), 5, w));
        // A threshold of 0: the first failure is one too many.
        assert!(f.exceeded(other, at(700), 0, w));
    }

    #[test]
    fn addresses_with_no_failure_left_in_the_window_are_swept() {
        let mut f = FailureCounter::default();
        let w = Duration::from_secs(600);
        let t0 = Instant::now();
        for i in 0..1024u32 {
            f.exceeded(IpAddr::from(i.to_be_bytes()), t0, 5, w);
        }
        assert_eq!(f.tracked(), 1024);
        let later = t0 + w;
        f.exceeded("198.51.100.7".parse().unwrap(), later, 5, w);
        assert_eq!(f.tracked(), 1, "the 1024 stale addresses are gone");
    }

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
    fn pending_blocks_hold_until_the_block_list_has_them_or_the_grace_ends() {
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let empty = BlockList::default().at_version(1);
        let mut p = PendingBlocks::default();
        assert!(p.add(ip, "flood", 1_000));
        assert!(!p.add(ip, "flood", 1_100), "already held");
        assert_eq!(p.blocking(&empty, ip, 2_000), Some("flood"));
        // The store's entry arrives in version 2: dropped, the store decides from now on
        // (a later removal in version 3 lifts it at once).
        let with_entry = BlockList::new(vec![domain::Block {
            network: "198.51.100.7/32".parse().unwrap(),
            reason: "flood".into(),
            source: "flood".into(),
            expires_ms: None,
        }])
        .at_version(2);
        assert_eq!(p.blocking(&with_entry, ip, 2_100), None);
        let removed = BlockList::default().at_version(3);
        assert_eq!(p.blocking(&removed, ip, 2_200), None);
        // A version without the entry keeps it, until the grace ends.
        assert!(p.add(ip, "auth_fail", 10_000));
        assert_eq!(p.blocking(&removed, ip, 14_999), Some("auth_fail"));
        assert_eq!(p.blocking(&removed, ip, 15_000), None);
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
