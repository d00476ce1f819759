//! The calls in progress, listed on demand: accounting holds every open call's record so far
//! (it sees all the engine's call events), and answers a [`LiveCalls::list`] query between
//! its turns. Nothing is copied while nobody asks, and the SIP path is not involved.

use std::time::Duration;

use domain::{CallInProgress, CustomerId};
use tokio::sync::{mpsc, oneshot};

/// A query for the calls in progress: a customer's only, or all; at most `limit`.
#[derive(Debug)]
pub struct LiveQuery {
    pub customer: Option<CustomerId>,
    pub limit: usize,
    pub reply: oneshot::Sender<Vec<CallInProgress>>,
}

/// The asking side (the API); accounting holds the receiver.
#[derive(Debug, Clone)]
pub struct LiveCalls(mpsc::Sender<LiveQuery>);

impl LiveCalls {
    /// A query channel: this side, and the receiver accounting answers on.
    pub fn channel() -> (LiveCalls, mpsc::Receiver<LiveQuery>) {
        let (tx, rx) = mpsc::channel(64);
        (LiveCalls(tx), rx)
    }

    /// The calls in progress (oldest first), or `None` when accounting does not answer
    /// within two seconds (busy, or stopped).
    pub async fn list(
        &self,
        customer: Option<CustomerId>,
        limit: usize,
    ) -> Option<Vec<CallInProgress>> {
        let (reply, answer) = oneshot::channel();
        let query = LiveQuery {
            customer,
            limit,
            reply,
        };
        tokio::time::timeout(Duration::from_secs(2), async {
            self.0.send(query).await.ok()?;
            answer.await.ok()
        })
        .await
        .ok()
        .flatten()
    }
}
