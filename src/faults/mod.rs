//! Fault injection, scheduled like operations: every planned fault starts at its offset on its own
//! future, so faults that overlap in the scenario overlap in the run (a kill during a latency
//! fault), and one fault's length never delays the next. Each family lives in its own module:
//!
//! - [`process`]: CLIENT KILL, CLIENT PAUSE, DEBUG SLEEP, restart, freeze, failover;
//! - [`network`]: the fault proxy's latency, bandwidth, blackhole, partition and reset;
//! - [`upgrade`]: the rolling upgrade, step by step;
//! - [`shell`]: a command of the user's, in a process group that dies with the run;
//! - [`maintenance`]: announced maintenance (a moved endpoint) and maintenance notifications
//!   through the RESP-aware proxy.
//!
//! Faults that cannot physically overlap (two restarts of one node, two rolling upgrades) are
//! refused by `validate` when their declared windows overlap; one that finds its node or the
//! topology still busy with another when it starts fails, saying which. A fault still running when
//! the plan ends or the run stops is cut short; a CLIENT PAUSE still in force is lifted; no shell
//! child outlives the run.

mod control;
pub mod maintenance;
pub mod network;
pub mod process;
pub mod shell;
pub mod upgrade;

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::client::native::conn::{Conn, ConnectSpec};
use crate::deployment::Deployment;
use crate::plan::describe_action;
use crate::scenario::model::{Exclusive, Fault, FaultAction};

/// A fault that started this much after its offset says so in the report.
pub const LATE: Duration = Duration::from_millis(100);
/// A fault of declared length that ends with the plan (`validate` allows it to end exactly then)
/// gets this long past its declared end before it is cut short: finishing a sleep or restarting a
/// node takes a moment beyond the figure.
const DECLARED_GRACE: Duration = Duration::from_secs(2);

/// What happened when a fault ran.
#[derive(Debug, Clone)]
pub struct FaultRun {
    /// The planned fault.
    pub fault: Fault,
    /// When it actually started, since the run's start.
    pub started: Duration,
    /// When it was done (a pause or sleep is done when the command returns).
    pub finished: Duration,
    /// Operations in flight when it started.
    pub in_flight: i64,
    /// Connections reopened to replace dropped ones, when it started.
    pub reconnects_before: u64,
    /// Whether it did what it should.
    pub ok: bool,
    /// What it did, or why it failed.
    pub detail: String,
    /// Its steps, for faults made of several (a rolling upgrade).
    pub steps: Vec<StepRun>,
    /// What a maintenance fault announced and changed.
    pub maintenance: Option<crate::outcome::MaintenanceRun>,
}

/// One step of a fault made of several, on the run's clock.
#[derive(Debug, Clone)]
pub struct StepRun {
    /// What the step does (`shard 0: restart replica 127.0.0.1:7003`).
    pub name: String,
    /// The cluster shard it touches (by the slot map's order), when it touches one.
    pub shard: Option<u32>,
    /// When it started, since the run's start.
    pub started: Duration,
    /// When it ended.
    pub finished: Duration,
    /// Whether it did what it should.
    pub ok: bool,
    /// What it did, or why it failed.
    pub detail: String,
}

/// What the faults act on and read, besides the plan.
pub struct Context<'a> {
    /// The deployment under test.
    pub deployment: &'a Deployment,
    /// The client name of the run's connections (`client_kill own` matches it).
    pub run_client: &'a str,
    /// Operations in flight now.
    pub in_flight: &'a AtomicI64,
    /// Connections reopened so far.
    pub reconnects: &'a AtomicU64,
    /// This process's share of a scaled-out run: only shard 0 injects faults.
    pub shard: Option<crate::shard::Shard>,
    /// The run's start.
    pub t0: Instant,
    /// The plan's end, since `t0`: faults still running then are cut short.
    pub end: Duration,
}

/// State the concurrent faults share.
#[derive(Default)]
struct Shared {
    /// What running faults hold, by fault name.
    busy: Mutex<Vec<(Exclusive, String)>>,
    /// Until when a CLIENT PAUSE holds, and connections opened before it to lift it.
    pause: tokio::sync::Mutex<(Option<Instant>, Vec<Conn>)>,
    /// Shell faults' process groups: killed when the run ends.
    groups: Mutex<Vec<shell::ProcessGroup>>,
    /// The last sequence number of the maintenance notifications sent.
    notices: AtomicI64,
}

/// Releases what a fault held when it ends, however it ends.
struct Held<'a> {
    shared: &'a Shared,
    name: String,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.shared.busy.lock().expect("busy lock").retain(|(_, n)| *n != self.name);
    }
}

/// What panicked inside a fault (a bug): the fault's name and the payload, for the run's
/// internal errors.
pub type Panic = (String, Box<dyn std::any::Any + Send>);

/// Runs every fault at its offset, concurrently, until each is done, the plan ends or the run
/// stops. Returns one entry per planned fault, in plan order: `None` for one whose offset the run
/// never reached (it was interrupted first) or whose code panicked — the panics come back beside,
/// so that a bug in one fault neither takes the run down nor passes as a fault that did its work.
pub async fn drive(faults: &[Fault], ctx: &Context<'_>, stop: watch::Receiver<bool>) -> (Vec<Option<FaultRun>>, Vec<Panic>) {
    use futures_util::FutureExt as _;
    let mut control_spec = ctx.deployment.spec.direct();
    control_spec.client_name = format!("{}:control", ctx.run_client);
    let shared = Shared::default();
    let caught = futures_util::future::join_all(
        faults.iter().map(|f| std::panic::AssertUnwindSafe(at_offset(f, ctx, &control_spec, &shared, stop.clone())).catch_unwind()),
    )
    .await;
    let mut panics = Vec::new();
    let runs = caught
        .into_iter()
        .zip(faults)
        .map(|(r, f)| {
            r.unwrap_or_else(|p| {
                panics.push((f.name.clone(), p));
                None
            })
        })
        .collect();
    lift_pause(&shared, ctx, stop).await;
    // Background children of shell faults end with the run (even if a fault panicked holding
    // the lock: the groups are still to be ended).
    shared.groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    (runs, panics)
}

/// A pause still in force when the run ends or stops is lifted then, not before.
async fn lift_pause(shared: &Shared, ctx: &Context<'_>, mut stop: watch::Receiver<bool>) {
    let mut pause = shared.pause.lock().await;
    let (until, conns) = &mut *pause;
    let Some(until) = until.filter(|u| *u > Instant::now()) else { return };
    let deadline = tokio::time::Instant::from_std(ctx.t0 + ctx.end);
    tokio::select! {
        _ = tokio::time::sleep_until(tokio::time::Instant::from_std(until)) => {}
        _ = tokio::time::sleep_until(deadline) => process::unpause(conns, until).await,
        _ = stop.wait_for(|s| *s) => process::unpause(conns, until).await,
    }
}

/// One fault: waits for its offset, then runs it until done, the plan's end or a stop.
async fn at_offset(f: &Fault, ctx: &Context<'_>, spec: &ConnectSpec, shared: &Shared, mut stop: watch::Receiver<bool>) -> Option<FaultRun> {
    if *stop.borrow() {
        return None;
    }
    tokio::select! {
        _ = tokio::time::sleep_until(tokio::time::Instant::from_std(ctx.t0 + f.at)) => {}
        _ = stop.wait_for(|s| *s) => return None,
    }
    let started = ctx.t0.elapsed();
    let in_flight = ctx.in_flight.load(Ordering::Relaxed);
    let reconnects_before = ctx.reconnects.load(Ordering::Relaxed);
    let run = |ok: bool, detail: String, steps: Vec<StepRun>, maintenance: Option<crate::outcome::MaintenanceRun>| FaultRun {
        fault: f.clone(),
        started,
        finished: ctx.t0.elapsed(),
        in_flight,
        reconnects_before,
        ok,
        detail,
        steps,
        maintenance,
    };
    if let Some(s) = ctx.shard.filter(|s| !s.runs_faults()) {
        // Shard 0 runs it; this shard's verdict judges what it did to this shard's traffic.
        return Some(run(true, format!("run by shard 0 of {}; judged here on shard {}'s traffic", s.count, s.index), Vec::new(), None));
    }
    let _held = match hold(f, shared) {
        Ok(h) => h,
        Err(why) => {
            tracing::warn!(fault = %f.name, error = %why, "fault could not start");
            return Some(run(false, why, Vec::new(), None));
        }
    };
    tracing::info!(fault = %f.name, action = %describe_action(&f.action), late_ms = started.saturating_sub(f.at).as_millis() as u64, "fault starting");
    if matches!(f.action, FaultAction::ClientPause { .. }) {
        prepare_unpause(f, ctx, spec, shared).await;
    }
    let until = match f.action.declared_length() {
        Some(length) => ctx.end.max(f.at + length + DECLARED_GRACE),
        None => ctx.end,
    };
    let deadline = tokio::time::Instant::from_std(ctx.t0 + until);
    let mut steps = Vec::new();
    let mut maint = matches!(f.action, FaultAction::Maintenance { .. } | FaultAction::Notify { .. }).then(crate::outcome::MaintenanceRun::default);
    let result = tokio::select! {
        r = run_one(&f.action, spec, ctx, shared, &mut steps, &mut maint) => r,
        _ = tokio::time::sleep_until(deadline) => Err("cut short: the run's plan ended first".to_owned()),
        _ = stop.wait_for(|s| *s) => Err("cut short: the run was interrupted".to_owned()),
    };
    let (ok, detail) = match result {
        Ok(d) => (true, d),
        Err(e) => (false, e),
    };
    if ok {
        tracing::info!(fault = %f.name, detail = %detail, "fault done");
    } else {
        tracing::warn!(fault = %f.name, error = %detail, "fault failed");
    }
    Some(run(ok, detail, steps, maint))
}

/// Claims what `f` holds while it runs; refuses when another running fault holds it.
fn hold<'a>(f: &Fault, shared: &'a Shared) -> Result<Option<Held<'a>>, String> {
    let Some(mine) = f.action.holds() else { return Ok(None) };
    let mut busy = shared.busy.lock().expect("busy lock");
    if let Some((theirs, name)) = busy.iter().find(|(x, _)| x.conflicts(mine)) {
        return Err(format!("could not start: {} is still busy with fault `{name}` ({})", mine.describe(), theirs.describe()));
    }
    busy.push((mine, f.name.clone()));
    Ok(Some(Held { shared, name: f.name.clone() }))
}

/// Records until when a pause holds and opens the connections that can lift it early.
async fn prepare_unpause(f: &Fault, ctx: &Context<'_>, spec: &ConnectSpec, shared: &Shared) {
    let FaultAction::ClientPause { duration, .. } = &f.action else { return };
    let mut pause = shared.pause.lock().await;
    pause.0 = pause.0.max(Some(Instant::now() + *duration));
    if pause.1.is_empty() {
        pause.1 = process::unpausers(spec, ctx.deployment).await;
    }
}

/// Does what `action` says.
async fn run_one(
    action: &FaultAction,
    spec: &ConnectSpec,
    ctx: &Context<'_>,
    shared: &Shared,
    steps: &mut Vec<StepRun>,
    maint: &mut Option<crate::outcome::MaintenanceRun>,
) -> Result<String, String> {
    let d = ctx.deployment;
    match action {
        FaultAction::ClientKill { clients } => process::client_kill(spec, d, *clients, ctx.run_client).await,
        FaultAction::ClientPause { duration, mode } => process::client_pause(spec, d, *duration, *mode).await,
        FaultAction::DebugSleep { duration } => process::debug_sleep(spec, d, *duration).await,
        FaultAction::Restart { node, down_for, new_port } => process::restart(spec, d, *node, *down_for, *new_port).await,
        FaultAction::Freeze { node, duration } => process::freeze(d, *node, *duration).await,
        FaultAction::Failover { shard } => process::failover(spec, d, *shard).await,
        FaultAction::Network { fault, node, duration } => network::network(spec, d, *fault, *node, *duration).await,
        FaultAction::Reset { node } => network::reset(d, *node),
        FaultAction::Shell { command, timeout } => shell::shell(command, *timeout, spec, &shared.groups).await,
        FaultAction::RollingUpgrade { binary } => upgrade::rolling_upgrade(spec, d, binary.as_deref(), ctx.t0, steps).await,
        FaultAction::Maintenance { kind: crate::scenario::raw::MaintenanceKind::Move, notice, announce, .. } => {
            maintenance::move_endpoint(spec, d, *notice, *announce, &shared.notices, ctx.t0, maint.get_or_insert_with(Default::default)).await
        }
        FaultAction::Maintenance { kind: crate::scenario::raw::MaintenanceKind::Failover, notice, announce, shard, .. } => {
            maintenance::failover(spec, d, shard.unwrap_or(0), *notice, *announce, &shared.notices, maint.get_or_insert_with(Default::default)).await
        }
        FaultAction::Maintenance { kind: crate::scenario::raw::MaintenanceKind::Migrate, announce, shard, slots, .. } => {
            let m = maint.get_or_insert_with(Default::default);
            maintenance::migrate(spec, d, shard.unwrap_or(0), slots.unwrap_or(maintenance::DEFAULT_SLOTS), *announce, &shared.notices, m).await
        }
        FaultAction::Notify { messages, notice } => {
            maintenance::notify(d, messages, *notice, &shared.notices, maint.get_or_insert_with(Default::default)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_faults_on_one_thing_conflict() {
        use Exclusive::*;
        assert!(Node(1).conflicts(Node(1)));
        assert!(!Node(1).conflicts(Node(2)));
        assert!(Upgrade.conflicts(Node(0)) && Node(0).conflicts(Upgrade) && Upgrade.conflicts(Upgrade));
        assert!(Failover.conflicts(Failover) && !Failover.conflicts(Node(0)));
        assert_eq!(FaultAction::Reset { node: None }.holds(), None);
    }
}
