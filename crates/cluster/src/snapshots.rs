//! The snapshots the engine reads and other parts of the switch keep current: the
//! configuration (an `Arc<Directory>` behind an `ArcSwap`) with the block list beside it,
//! the customers' balances, and the accounting gate. A writer (the store watcher in `vts`)
//! builds a new snapshot and swaps it; readers never block and never see a half-built one.
//! The block list is a snapshot of its own (automatic blocks change it often; they must not
//! rebuild the directory).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use domain::{BlockList, CustomerId, Directory, Money};

/// A shared, swappable [`Directory`] and [`BlockList`].
#[derive(Debug, Clone)]
pub struct DirectorySource(Arc<Snapshots>);

#[derive(Debug)]
struct Snapshots {
    directory: ArcSwap<Directory>,
    blocklist: ArcSwap<BlockList>,
}

impl DirectorySource {
    /// The directory, with an empty block list until [`Self::store_blocklist`].
    pub fn new(directory: Directory) -> Self {
        DirectorySource(Arc::new(Snapshots {
            directory: ArcSwap::from_pointee(directory),
            blocklist: ArcSwap::from_pointee(BlockList::default()),
        }))
    }

    /// The current snapshot.
    pub fn load(&self) -> Arc<Directory> {
        self.0.directory.load_full()
    }

    /// The current snapshot's version (no reference taken: cheap enough per datagram).
    pub fn version(&self) -> i64 {
        self.0.directory.load().version
    }

    /// Replaces the snapshot.
    pub fn store(&self, directory: Directory) {
        self.0.directory.store(Arc::new(directory));
    }

    /// The current block list.
    pub fn blocklist(&self) -> Arc<BlockList> {
        self.0.blocklist.load_full()
    }

    /// The current block list's version (no reference taken).
    pub fn blocklist_version(&self) -> i64 {
        self.0.blocklist.load().version()
    }

    /// Replaces the block list.
    pub fn store_blocklist(&self, blocklist: BlockList) {
        self.0.blocklist.store(Arc::new(blocklist));
    }
}

/// Whether accounting can record more calls: closed while its write-ahead log is at its
/// bound (the database away long enough to fill it), so that new calls are refused
/// (`503 Service Unavailable - CDR Log Full`) rather than carried without a durable record.
#[derive(Debug, Clone, Default)]
pub struct AccountingGate(Arc<AtomicBool>);

impl AccountingGate {
    pub fn set_full(&self, full: bool) {
        self.0.store(full, Ordering::Relaxed);
    }

    pub fn is_full(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Customers' balances: as the store last had them (polled by `vts`; charges and credits
/// change them outside the configuration, so they do not reload the directory), less the
/// charges of calls that ended but are not in the store's balance yet.
///
/// A call's charge is held here from the moment it ends (the engine) until a balance read
/// that started after its CDR was committed (accounting marks the commit, the poller reads
/// the commit count before it reads the store). So a balance never looks higher than it
/// is: between a call's end and the poll after its CDR's commit, or through a database
/// outage, its charge is counted here.
#[derive(Debug, Clone, Default)]
pub struct BalanceSource(Arc<Balances>);

#[derive(Debug, Default)]
struct Balances {
    polled: ArcSwap<HashMap<CustomerId, Money>>,
    unposted: Mutex<Unposted>,
}

#[derive(Debug, Default)]
struct Unposted {
    /// By CDR id: the customer, the amount and, once committed, the commit's number.
    charges: HashMap<String, (CustomerId, Money, Option<u64>)>,
    per_customer: HashMap<CustomerId, i64>,
    commits: u64,
}

impl BalanceSource {
    pub fn new(balances: HashMap<CustomerId, Money>) -> Self {
        let source = BalanceSource::default();
        source.0.polled.store(Arc::new(balances));
        source
    }

    fn unposted(&self) -> std::sync::MutexGuard<'_, Unposted> {
        // A panic while holding the lock leaves consistent maps (each change is one insert
        // or remove with its total); keep going.
        self.0.unposted.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A customer's balance (0 without a ledger row yet) less its calls' charges not in it
    /// yet.
    pub fn get(&self, id: CustomerId) -> Money {
        // Both under the lock `refresh` swaps them under: never an old balance with the
        // holds of a newer one.
        let u = self.unposted();
        let polled = self.0.polled.load().get(&id).copied().unwrap_or_default();
        let owed = u.per_customer.get(&id).copied().unwrap_or(0);
        Money(polled.0.saturating_sub(owed))
    }

    /// A call ended costing `amount`: counted against the customer until its CDR
    /// (`cdr_id`) is committed and the balance read again. Called before the call's end
    /// event is sent, so the commit always finds it.
    pub fn charge_pending(&self, cdr_id: String, customer: CustomerId, amount: Money) {
        let mut u = self.unposted();
        let total = u.per_customer.entry(customer).or_default();
        *total = total.saturating_add(amount.0);
        if let Some((c, a, _)) = u.charges.insert(cdr_id, (customer, amount, None)) {
            // The same CDR twice (it cannot happen): count it once.
            let total = u.per_customer.entry(c).or_default();
            *total = total.saturating_sub(a.0);
        }
    }

    /// These CDRs are committed (their charges are in the store's balances from now on).
    pub fn committed<'a>(&self, cdr_ids: impl IntoIterator<Item = &'a str>) {
        let mut u = self.unposted();
        u.commits += 1;
        let n = u.commits;
        for id in cdr_ids {
            // The first commit counts (a later mark of the same CDR would only delay it).
            if let Some(entry) = u.charges.get_mut(id)
                && entry.2.is_none()
            {
                entry.2 = Some(n);
            }
        }
    }

    /// The commit count, read before reading the store's balances (see [`Self::refresh`]).
    pub fn commits(&self) -> u64 {
        self.unposted().commits
    }

    /// Balances read from the store after [`Self::commits`] returned `commits_before`:
    /// they include every charge committed up to then, which stop being counted here.
    pub fn refresh(&self, balances: HashMap<CustomerId, Money>, commits_before: u64) {
        let mut u = self.unposted();
        self.0.polled.store(Arc::new(balances));
        let Unposted {
            charges,
            per_customer,
            ..
        } = &mut *u;
        charges.retain(|_, (customer, amount, committed)| {
            let posted = committed.is_some_and(|n| n <= commits_before);
            if posted {
                let total = per_customer.entry(*customer).or_default();
                *total = total.saturating_sub(amount.0);
                if *total == 0 {
                    per_customer.remove(customer);
                }
            }
            !posted
        });
    }

    /// Charges held (calls ended whose charge the polled balances may not include yet).
    #[cfg(test)]
    fn unposted_charges(&self) -> usize {
        self.unposted().charges.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_counts_until_a_read_after_its_commit() {
        let c = CustomerId(1);
        let b = BalanceSource::new(HashMap::from([(c, Money(1_000))]));
        b.charge_pending("x".into(), c, Money(300));
        assert_eq!(b.get(c), Money(700));
        // A read that started before the commit may not include it: still counted.
        let before = b.commits();
        b.committed(["x"]);
        b.refresh(HashMap::from([(c, Money(1_000))]), before);
        assert_eq!(b.get(c), Money(700));
        // A read that started after it does.
        let after = b.commits();
        b.refresh(HashMap::from([(c, Money(700))]), after);
        assert_eq!(b.get(c), Money(700));
        assert_eq!(b.unposted_charges(), 0);
        // A commit of a CDR with no pending charge changes nothing.
        b.committed(["unknown"]);
        assert_eq!(b.get(c), Money(700));
    }
}
