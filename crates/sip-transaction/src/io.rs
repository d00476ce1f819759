//! The output side of the manager: queued transmits, queued TU events and the timer queue
//! (a min-heap of deadlines with lazy deletion: an entry is live only while the transaction
//! still has that timer armed at that instant).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use crate::{Event, Timer, Transmit, TxnId};

/// Where state machines put what they want done.
#[derive(Debug)]
pub(crate) struct Io<A> {
    pub(crate) transmits: VecDeque<Transmit<A>>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) timers: BinaryHeap<Reverse<(Instant, TxnId, Timer)>>,
}

impl<A: Clone> Io<A> {
    pub(crate) fn new() -> Self {
        Io {
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            timers: BinaryHeap::new(),
        }
    }

    pub(crate) fn send(&mut self, id: TxnId, to: &A, payload: Bytes) {
        self.transmits.push_back(Transmit {
            id,
            to: to.clone(),
            payload,
        });
    }

    pub(crate) fn arm(&mut self, id: TxnId, timer: Timer, at: Instant) {
        self.timers.push(Reverse((at, id, timer)));
    }

    pub(crate) fn event(&mut self, event: Event) {
        self.events.push_back(event);
    }
}
