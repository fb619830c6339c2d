//! redis-test's own client: what a load generator that must cost less CPU per operation than
//! redis-benchmark needs — a connection
//! owned by one worker for one operation with no background task ([`conn`]), bb8 pools with a fair
//! gate and no PING per checkout ([`pool`]), cluster routing and redirects ([`cluster`]), sentinel
//! discovery and following ([`sentinel`], [`master`]), TLS ([`tls`]), and the routing of a round
//! trip to the node that serves it ([`route`]).

pub use route::Native;

pub mod cluster;
pub mod conn;
pub mod master;
pub mod pool;
pub mod route;
pub mod sentinel;
pub mod tls;
