//! What talks to Redis: the clients that send a run's round trips, each in its own module behind
//! the one seam the executor uses (send a round trip, get its replies and its errors classified):
//!
//! - [`native`]: redis-test's own engine — the RESP codec, one connection without a background
//!   task, bb8 pools, cluster routing, sentinel following, TLS;
//! - [`redis_rs`]: the `redis` crate as the client under test, driven through the same seam;
//! - [`kept`]: the connections workers keep between round trips, for both clients;
//! - [`maintenance`]: maintenance notifications (smart client handoffs): the messages, and what
//!   the native engine does with them.
//!
//! What is *under test* (local nodes, the fault proxy, topology) lives in [`crate::deployment`].

pub mod kept;
pub mod maintenance;
pub mod native;
pub mod redis_rs;

use std::time::Instant;

use crate::command::RoundTrip;
use crate::keys::Rng;
use crate::metrics::{ErrorClass, Sends};
use crate::resp::Value;

/// The client a run sends its round trips through: the one seam the executor uses.
pub enum Client {
    /// redis-test's own engine.
    Native(native::Native),
    /// The `redis` crate, as the client under test.
    RedisRs(redis_rs::RedisRs),
}

impl Client {
    /// Sends one round trip for `worker` (to the node serving `slot` on a cluster; a replica when
    /// `replica_read`) and fills `replies`; returns its outcome, its error classified, and when it
    /// was sent (for service time). Every send, resends and redirects included, is counted in
    /// `sends`.
    #[allow(clippy::too_many_arguments)]
    pub async fn round_trip(
        &self,
        worker: usize,
        slot: Option<u16>,
        rt: &RoundTrip,
        replica_read: bool,
        replies: &mut Vec<Value>,
        rng: &mut Rng,
        sends: &mut Sends,
    ) -> (Result<(), ErrorClass>, Instant) {
        match self {
            Client::Native(n) => native::route::routed_round_trip(n, worker, slot, rt, replica_read, replies, rng, sends).await,
            // Routing, redirects and replica reads are redis-rs's own business.
            Client::RedisRs(c) => c.round_trip(worker, rt, replies, &mut sends.times).await,
        }
    }

    /// Ends `worker`'s hold on a connection kept between its round trips (see
    /// [`native::pool::Pools::keep_connections`] and [`redis_rs::RedisRs::keep_connections`]):
    /// called when the worker goes idle.
    pub fn release(&self, worker: usize) {
        match self {
            Client::Native(n) => n.pools.release_kept(worker),
            Client::RedisRs(c) => c.release_kept(worker),
        }
    }

    /// Whether the client resends failed round trips by its own policy (redis-rs on a cluster),
    /// so the executor must not resend them again.
    pub fn resends_itself(&self) -> bool {
        matches!(self, Client::RedisRs(c) if c.retries_itself())
    }

    /// What the client does with maintenance notifications and has counted: the native
    /// engine's, when it asks for them (redis-rs does not implement them).
    pub fn maintenance(&self) -> Option<&std::sync::Arc<maintenance::ClientMaintenance>> {
        match self {
            Client::Native(n) => n.pools.maintenance(),
            Client::RedisRs(_) => None,
        }
    }

    /// Connections open now.
    pub fn open_connections(&self) -> u32 {
        match self {
            Client::Native(n) => n.pools.open_connections(),
            Client::RedisRs(c) => c.open_connections(),
        }
    }
}
