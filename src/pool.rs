//! Connection pools: bb8 over our RESP connections. No PING on checkout (it would double the round
//! trips of the hot path); instead a connection idle for longer than the health-check interval is
//! PINGed before use, and a connection that broke is dropped and replaced by bb8.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bb8::{ManageConnection, Pool, PooledConnection, RunError};

use crate::metrics::{ConnCounters, ErrorClass, RunMetrics};
use crate::scenario::model::Connections;
use crate::target::conn::{Conn, ConnError, ConnectSpec};

/// Opens connections for bb8 and counts them.
pub struct Manager {
    /// The run's span: bb8 connects on its own tasks, and their events should still carry the run id.
    span: tracing::Span,
    spec: ConnectSpec,
    metrics: Arc<RunMetrics>,
    ping_timeout: Duration,
}

impl Manager {
    fn counters(&self) -> &ConnCounters {
        &self.metrics.conns
    }
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = ConnError;

    async fn connect(&self) -> Result<Conn, ConnError> {
        let started = std::time::Instant::now();
        let result = tracing::Instrument::instrument(Conn::connect(&self.spec), self.span.clone()).await;
        let _entered = self.span.enter();
        match result {
            Ok(c) => {
                self.counters().opened(started.elapsed());
                tracing::debug!(addr = %self.spec.addr, took_us = started.elapsed().as_micros() as u64, "connection opened");
                Ok(c)
            }
            Err(e) => {
                self.counters().connect_errors.fetch_add(1, Ordering::Relaxed);
                tracing::info!(addr = %self.spec.addr, error = %e, "connection attempt failed");
                Err(e)
            }
        }
    }

    async fn is_valid(&self, conn: &mut Conn) -> Result<(), ConnError> {
        match conn.command(&[b"PING"], self.ping_timeout).await? {
            crate::target::resp::Value::Error(e) => Err(ConnError::Rejected(e)),
            _ => Ok(()),
        }
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        let _entered = self.span.enter();
        let broken = conn.is_broken();
        if broken {
            self.counters().dropped.fetch_add(1, Ordering::Relaxed);
            tracing::info!(addr = %self.spec.addr, "broken connection dropped; bb8 opens a replacement");
        }
        broken
    }
}

/// A checked-out connection.
pub type Pooled<'a> = PooledConnection<'a, Manager>;

/// The run's pools; workers are spread over them round-robin.
pub struct Pools {
    pools: Vec<Pool<Manager>>,
    follow: Option<Arc<crate::target::sentinel::Master>>,
    per_pool: u32,
    health_interval: Duration,
    ping_timeout: Duration,
}

impl Pools {
    /// Creates `connections.pools` pools of `connections.per_pool` connections (opened lazily).
    pub fn new(spec: &ConnectSpec, connections: &Connections, metrics: &Arc<RunMetrics>) -> Pools {
        let pools = (0..connections.pools)
            .map(|_| {
                Pool::builder()
                    .max_size(connections.per_pool)
                    .min_idle(None)
                    .test_on_check_out(false)
                    .connection_timeout(connections.acquire_timeout)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .build_unchecked(Manager {
                        span: tracing::Span::current(),
                        spec: spec.clone(),
                        metrics: Arc::clone(metrics),
                        ping_timeout: connections.command_timeout,
                    })
            })
            .collect();
        Pools {
            pools,
            follow: spec.follow.clone(),
            per_pool: connections.per_pool,
            health_interval: connections.health_check_interval,
            ping_timeout: connections.command_timeout,
        }
    }

    /// Checks out a connection for `worker`; an idle one is health-checked first.
    pub async fn get(&self, worker: usize) -> Result<Pooled<'_>, ErrorClass> {
        let pool = &self.pools[worker % self.pools.len()];
        // Every pooled connection may turn out stale after a failover; then a fresh one is opened.
        for _ in 0..self.per_pool + 3 {
            let mut conn = pool.get().await.map_err(|e| match e {
                RunError::TimedOut => ErrorClass::PoolTimeout,
                RunError::User(_) => ErrorClass::Connection,
            })?;
            // After a failover, a connection to the old master is stale even if it still answers.
            if self.follow.as_ref().is_some_and(|m| m.generation() != conn.generation) {
                conn.mark_broken();
                continue;
            }
            if conn.last_used.elapsed() < self.health_interval {
                return Ok(conn);
            }
            if conn.command(&[b"PING"], self.ping_timeout).await.is_ok() {
                return Ok(conn);
            }
            // The PING broke it; dropping returns it to bb8, which discards it. Try another.
        }
        Err(ErrorClass::Connection)
    }

    /// Connections currently open, over all pools.
    pub fn open_connections(&self) -> u32 {
        self.pools.iter().map(|p| p.state().connections).sum()
    }
}
