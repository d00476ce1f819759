//! The configuration snapshot the SIP path reads: built once from the store, never mutated,
//! swapped whole when the configuration changes.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::dialplan::{DialPlan, DialPlanId};
use crate::party::{Carrier, CarrierId, Customer, CustomerId};
use crate::rates::{RatePlan, RatePlanId, RateTable};
use crate::settings::Settings;

/// Customers by source address and carriers in routing order.
#[derive(Debug, Default)]
pub struct Directory {
    /// The store's configuration version this snapshot was built from.
    pub version: i64,
    customers: HashMap<CustomerId, Customer>,
    /// Host addresses (/32, /128): one lookup.
    exact: HashMap<IpAddr, CustomerId>,
    /// Other networks, longest prefix first.
    networks: Vec<(IpNet, CustomerId)>,
    /// Addresses of carriers (their in-dialog requests and responses come from there).
    carrier_ips: std::collections::HashSet<IpAddr>,
    /// Active carriers, higher priority first, then higher weight, then lower id.
    routes: Vec<Carrier>,
    /// Global settings in force.
    pub settings: Settings,
    /// Addresses never blocked automatically.
    whitelist: Vec<IpNet>,
    dial_plans: HashMap<DialPlanId, DialPlan>,
    /// What each carrier costs, by destination (LCR).
    carrier_rates: HashMap<CarrierId, RateTable>,
    /// What each customer pays, by destination (LCR's ceiling).
    customer_rates: HashMap<CustomerId, RateTable>,
    /// Carriers' health as last stored (the switch starts from it after a restart).
    pub health: HashMap<CarrierId, crate::health::Health>,
    rate_plans: HashMap<RatePlanId, RatePlan>,
}

impl Directory {
    /// Builds the snapshot. Every customer is identified (a disabled, suspended or blocked
    /// one is refused by the status stage, with its own reply); inactive carriers are left
    /// out.
    pub fn new(version: i64, customers: Vec<Customer>, carriers: Vec<Carrier>) -> Self {
        let mut exact = HashMap::new();
        let mut networks = Vec::new();
        let mut by_id = HashMap::new();
        for c in customers {
            for net in &c.ips {
                let net = net.trunc();
                if net.prefix_len() == net.max_prefix_len() {
                    exact.insert(net.addr(), c.id);
                } else {
                    networks.push((net, c.id));
                }
            }
            by_id.insert(c.id, c);
        }
        networks.sort_by_key(|n| std::cmp::Reverse(n.0.prefix_len()));
        let carrier_ips = carriers
            .iter()
            .filter_map(|c| {
                c.host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .ok()
            })
            .map(canonical)
            .collect();
        let mut routes: Vec<Carrier> = carriers.into_iter().filter(|c| c.active).collect();
        routes.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(b.weight.cmp(&a.weight))
                .then(a.id.cmp(&b.id))
        });
        Directory {
            version,
            customers: by_id,
            exact,
            networks,
            carrier_ips,
            routes,
            settings: Settings::default(),
            whitelist: Vec::new(),
            dial_plans: HashMap::new(),
            carrier_rates: HashMap::new(),
            customer_rates: HashMap::new(),
            health: HashMap::new(),
            rate_plans: HashMap::new(),
        }
    }

    /// The snapshot with these rate plans.
    pub fn with_rate_plans(mut self, plans: Vec<RatePlan>) -> Self {
        self.rate_plans = plans.into_iter().map(|p| (p.id, p)).collect();
        self
    }

    pub fn rate_plan(&self, id: RatePlanId) -> Option<&RatePlan> {
        self.rate_plans.get(&id)
    }

    /// The snapshot with these dialing plans.
    pub fn with_dial_plans(mut self, plans: Vec<DialPlan>) -> Self {
        self.dial_plans = plans.into_iter().map(|p| (p.id, p)).collect();
        self
    }

    /// The snapshot with these rate tables.
    pub fn with_rates(
        mut self,
        carriers: HashMap<CarrierId, RateTable>,
        customers: HashMap<CustomerId, RateTable>,
    ) -> Self {
        self.carrier_rates = carriers;
        self.customer_rates = customers;
        self
    }

    /// The snapshot with the stored carrier health.
    pub fn with_health(mut self, health: HashMap<CarrierId, crate::health::Health>) -> Self {
        self.health = health;
        self
    }

    pub fn dial_plan(&self, id: DialPlanId) -> Option<&DialPlan> {
        self.dial_plans.get(&id)
    }

    pub fn carrier_rates(&self, id: CarrierId) -> Option<&RateTable> {
        self.carrier_rates.get(&id)
    }

    pub fn customer_rates(&self, id: CustomerId) -> Option<&RateTable> {
        self.customer_rates.get(&id)
    }

    /// The customer a source address belongs to: an exact address first, then the longest
    /// matching network. IPv4-mapped IPv6 sources are looked up as IPv4.
    pub fn identify(&self, ip: IpAddr) -> Option<&Customer> {
        let ip = canonical(ip);
        let id = self.exact.get(&ip).copied().or_else(|| {
            self.networks
                .iter()
                .find(|(net, _)| net.contains(&ip))
                .map(|(_, id)| *id)
        })?;
        self.customers.get(&id)
    }

    /// Whether `ip` is a configured customer's or carrier's address: such a source is
    /// never blocked automatically (customers are held by their own limits) and a block
    /// of it never drops its in-dialog requests unread.
    pub fn is_known(&self, ip: IpAddr) -> bool {
        self.identify(ip).is_some() || self.carrier_ips.contains(&canonical(ip))
    }

    /// The snapshot with these settings.
    pub fn with_settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// The snapshot with this whitelist.
    pub fn with_whitelist(mut self, whitelist: Vec<IpNet>) -> Self {
        self.whitelist = whitelist;
        self
    }

    /// Whether `ip` is on the whitelist (never blocked automatically). IPv4-mapped IPv6
    /// sources are looked up as IPv4.
    pub fn whitelisted(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.whitelist.iter().any(|net| net.contains(&ip))
    }

    pub fn customer(&self, id: CustomerId) -> Option<&Customer> {
        self.customers.get(&id)
    }

    /// Every customer, in no particular order.
    pub fn customers(&self) -> impl Iterator<Item = &Customer> {
        self.customers.values()
    }

    /// Carriers in the order calls try them.
    pub fn routes(&self) -> &[Carrier] {
        &self.routes
    }
}

/// IPv4-mapped IPv6 addresses as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::party::{CarrierId, Transport};

    fn customer(id: i64, ips: &[&str]) -> Customer {
        Customer {
            id: CustomerId(id),
            name: format!("c{id}"),
            active: true,
            ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
            max_channels: None,
            max_cps: None,
            status: crate::CustomerStatus::Active,
            status_reason: None,
            ..Customer::default()
        }
    }

    fn carrier(id: i64, priority: i32, weight: i32, active: bool) -> Carrier {
        Carrier {
            first_response_ms: None,
            ring_timeout_s: None,
            id: CarrierId(id),
            name: format!("k{id}"),
            host: "127.0.0.1".into(),
            port: 5060,
            transport: Transport::Udp,
            priority,
            weight,
            active,
            max_channels: None,
            max_cps: None,
            allow: Vec::new(),
            deny: Vec::new(),
            ..Carrier::default()
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let d = Directory::new(
            1,
            vec![
                customer(1, &["10.0.0.0/8"]),
                customer(2, &["10.1.0.0/16"]),
                customer(3, &["10.1.2.3/32", "2001:db8::/32"]),
            ],
            vec![],
        );
        let id = |s: &str| d.identify(s.parse().unwrap()).map(|c| c.id.0);
        assert_eq!(id("10.9.9.9"), Some(1));
        assert_eq!(id("10.1.9.9"), Some(2));
        assert_eq!(id("10.1.2.3"), Some(3));
        assert_eq!(id("2001:db8::7"), Some(3));
        assert_eq!(id("::ffff:10.1.2.3"), Some(3));
        assert_eq!(id("192.0.2.1"), None);
    }

    #[test]
    fn disabled_customers_are_still_identified() {
        let mut c = customer(1, &["192.0.2.1/32"]);
        c.active = false;
        let d = Directory::new(1, vec![c], vec![]);
        assert!(
            d.identify("192.0.2.1".parse().unwrap())
                .is_some_and(|c| !c.active)
        );
    }

    #[test]
    fn routes_by_priority_then_weight() {
        let d = Directory::new(
            1,
            vec![],
            vec![
                carrier(1, 5, 1, true),
                carrier(2, 10, 1, true),
                carrier(3, 10, 7, true),
                carrier(4, 99, 1, false),
            ],
        );
        let order: Vec<i64> = d.routes().iter().map(|c| c.id.0).collect();
        assert_eq!(order, vec![3, 2, 1]);
    }
}
