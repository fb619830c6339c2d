//! The address a sentinel target's connections follow: where the master is now, how many times it
//! moved, and the healthy replicas for reads. Plain state, shared by the connections (which read it
//! when they connect) and the sentinel watcher (which moves it).

use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::scenario::model::HostPort;

/// The master's current address, shared by everything that connects.
#[derive(Debug)]
pub struct Master {
    addr: RwLock<HostPort>,
    generation: AtomicU64,
    moves: std::sync::Mutex<Vec<(std::time::SystemTime, HostPort, HostPort)>>,
    replicas: RwLock<Vec<HostPort>>,
}

impl Master {
    /// Starts at `addr`, generation 0.
    pub fn new(addr: HostPort) -> Master {
        Master { addr: RwLock::new(addr), generation: AtomicU64::new(0), moves: std::sync::Mutex::new(Vec::new()), replicas: RwLock::new(Vec::new()) }
    }

    /// The healthy replicas the sentinels last reported (for replica reads).
    pub fn replicas(&self) -> Vec<HostPort> {
        self.replicas.read().expect("replicas lock").clone()
    }

    /// Replaces the replica list.
    pub fn set_replicas(&self, replicas: Vec<HostPort>) {
        let mut cur = self.replicas.write().expect("replicas lock");
        if *cur != replicas {
            tracing::info!(replicas = %replicas.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "), "replicas for reads");
            *cur = replicas;
        }
    }

    /// Where the master is now.
    pub fn addr(&self) -> HostPort {
        self.addr.read().expect("master lock").clone()
    }

    /// How many times it has moved.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Every move seen: when, from where, to where.
    pub fn moves(&self) -> Vec<(std::time::SystemTime, HostPort, HostPort)> {
        self.moves.lock().expect("moves lock").clone()
    }

    /// Records a move; returns whether the address changed.
    pub fn moved_to(&self, addr: HostPort) -> bool {
        let mut cur = self.addr.write().expect("master lock");
        if *cur == addr {
            return false;
        }
        tracing::info!(from = %*cur, to = %addr, "master moved; following it");
        self.moves.lock().expect("moves lock").push((std::time::SystemTime::now(), cur.clone(), addr.clone()));
        *cur = addr;
        self.generation.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// A new generation, at `addr` when given (a MOVING's endpoint) or where it is (a MOVING
    /// without one): pooled connections of older generations are replaced as they come back.
    pub fn renew(&self, addr: Option<HostPort>) {
        let mut cur = self.addr.write().expect("master lock");
        if let Some(addr) = addr
            && *cur != addr
        {
            tracing::info!(from = %*cur, to = %addr, "endpoint moved; following it");
            self.moves.lock().expect("moves lock").push((std::time::SystemTime::now(), cur.clone(), addr.clone()));
            *cur = addr;
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}
