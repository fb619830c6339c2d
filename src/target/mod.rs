//! Reaching the deployment under test: connection specs from the scenario's target, local
//! deployments started for a run, and the RESP connection itself.

pub mod conn;
pub mod local;
pub mod resp;
pub mod tls;

use crate::scenario::model::{Connections, Endpoint, LocalTopology, Mode, Target};
use conn::{Conn, ConnError, ConnectSpec};
use local::{LocalError, LocalServer};

/// Why the target cannot be used; every variant means exit code 3.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// A local deployment could not start.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// The first connection failed.
    #[error("cannot reach the target {addr}: {err}")]
    Unreachable {
        /// Address tried.
        addr: String,
        /// Why.
        err: ConnError,
    },
    /// The server refused the handshake.
    #[error("the target {addr} refused the connection: {msg} (check username and password)")]
    Rejected {
        /// Address tried.
        addr: String,
        /// The server's error.
        msg: String,
    },
    /// TLS could not be set up or the handshake failed.
    #[error("TLS with the target {addr} failed: {msg}")]
    Tls {
        /// Address tried.
        addr: String,
        /// What went wrong (untrusted certificate, wrong name, unreadable file).
        msg: String,
    },
    /// A target this build cannot drive yet.
    #[error("{0}")]
    Unsupported(String),
}

/// A ready target: how to connect, and the local server to stop afterwards, if any.
pub struct Deployment {
    /// Connection settings for data connections.
    pub spec: ConnectSpec,
    /// The local server, when the tool started one.
    pub local: Option<LocalServer>,
}

impl Deployment {
    /// Opens one connection; used to prove the target is reachable before the run starts.
    pub async fn probe(&self) -> Result<Conn, TargetError> {
        let addr = self.spec.addr.to_string();
        Conn::connect(&self.spec).await.map_err(|err| match err {
            ConnError::Rejected(msg) => TargetError::Rejected { addr, msg },
            ConnError::Tls(msg) => TargetError::Tls { addr, msg },
            err => TargetError::Unreachable { addr, err },
        })
    }

    /// Stops a local server, if there is one.
    pub async fn shutdown(self) {
        if let Some(l) = self.local {
            l.stop().await;
        }
    }
}

/// Prepares the target: starts a local server when asked, then checks that it answers.
pub async fn prepare(target: &Target, connections: &Connections, client_name: &str) -> Result<Deployment, TargetError> {
    if target.mode != Mode::Standalone {
        return Err(TargetError::Unsupported(format!("{:?} targets are not supported by this version yet; use a standalone target", target.mode)));
    }
    let (addr, local) = match &target.endpoint {
        Endpoint::Local(LocalTopology::Standalone) => {
            let server = LocalServer::start(target.password.as_ref(), &[]).await?;
            (server.addr.clone(), Some(server))
        }
        Endpoint::Local(other) => return Err(TargetError::Unsupported(format!("local {other:?} deployments are not supported by this version yet"))),
        Endpoint::Remote(addrs) => (addrs.first().cloned().ok_or_else(|| TargetError::Unsupported("the target has no address".into()))?, None),
    };
    let addr_text = addr.to_string();
    let spec = ConnectSpec {
        addr,
        username: target.username.clone(),
        password: target.password.clone(),
        db: target.db,
        protocol: target.protocol,
        client_name: client_name.to_owned(),
        connect_timeout: connections.connect_timeout,
        tls: match &target.tls {
            Some(t) => Some(tls::settings(t).map_err(|msg| TargetError::Tls { addr: addr_text.clone(), msg })?),
            None => None,
        },
    };
    let deployment = Deployment { spec, local };
    deployment.probe().await?;
    Ok(deployment)
}
