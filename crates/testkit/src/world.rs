//! Customers and carriers built in code: the directory snapshot the engine reads, without a
//! store.

use std::net::SocketAddr;

use domain::{Carrier, CarrierId, Customer, CustomerId, Directory, Transport};

/// The customers and carriers of a test.
#[derive(Debug, Clone, Default)]
pub struct World {
    customers: Vec<Customer>,
    carriers: Vec<Carrier>,
}

impl World {
    pub fn new() -> World {
        World::default()
    }

    /// An active customer whose calls come from `ip` (ids from 1, in order).
    pub fn customer(mut self, name: &str, ip: &str) -> World {
        let id = CustomerId(self.customers.len() as i64 + 1);
        self.customers.push(Customer {
            id,
            name: name.into(),
            active: true,
            ips: vec![format!("{ip}/32").parse().expect("an IPv4 address")],
            ..Customer::default()
        });
        self
    }

    /// An active UDP carrier at `addr` (ids from 1, in order; higher `priority` first).
    pub fn carrier(mut self, name: &str, addr: SocketAddr, priority: i32) -> World {
        let id = CarrierId(self.carriers.len() as i64 + 1);
        self.carriers.push(Carrier {
            id,
            name: name.into(),
            host: addr.ip().to_string(),
            port: addr.port(),
            transport: Transport::Udp,
            priority,
            weight: 1,
            active: true,
            ..Carrier::default()
        });
        self
    }

    /// The directory snapshot of this world (version 1).
    pub fn directory(&self) -> Directory {
        Directory::new(1, self.customers.clone(), self.carriers.clone())
    }
}
