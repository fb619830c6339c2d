//! Running a plan: pools, subscribers, the pacer, one task per worker, a once-a-second collector,
//! then verification of acknowledged writes. Stops by itself at the plan's end, or early when
//! `stop` turns true (SIGINT/SIGTERM), finishing operations in flight.

pub mod cleanup;
mod pacer;
pub mod resilience;
mod series;
mod stopped;
mod streams;
mod templates;
mod verify;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tracing::Instrument as _;

use crate::client::native::pool::Pools;
use crate::client::{Client, native::Native};
use crate::deployment::Deployment;
use crate::faults::{self, FaultRun};
pub use crate::live::{Live, PubsubLive};
use crate::metrics::{OpKey, RunMetrics};
use crate::outcome::{FaultVerdict, GapRecord, MAX_GAPS, PhaseRun, Recovery, RunResult, StepVerdict};
use crate::plan::Plan;
use crate::scenario::model::Scenario;
use crate::workload::pubsub;
use crate::workload::{Weighted, Workload};

/// State every worker reads.
pub struct Shared {
    plan: Plan,
    t0: Instant,
    seed: u64,
    workloads: Vec<Workload>,
    mixes: Vec<Weighted>,
    tokens: Vec<Option<Arc<pacer::Tokens>>>,
    /// What the round trips go through: the native engine or redis-rs.
    client: crate::client::Client,
    metrics: Arc<RunMetrics>,
    writers: usize,
    spans: Option<(f64, tokio::sync::mpsc::Sender<crate::live::SpanRecord>)>,
    tracker: resilience::Tracker,
    retry: crate::scenario::model::Retry,
    read_from_replicas: bool,
    /// Cluster targets: the shard (by the slot map at the start) of every slot; empty otherwise.
    shard_of_slot: Vec<u16>,
    /// Cluster shards by the slot map at the start: names for the report.
    shards: Vec<String>,
}

/// Judges each fault's window from the tracker: from its start to the next fault's start (or the
/// run's end). `runs` is in plan order, `None` for a fault the run never reached.
fn fault_verdicts(runs: &[Option<FaultRun>], shared: &Shared, ended: Duration, reconnects_end: u64) -> Vec<Option<FaultVerdict>> {
    let gaps = shared.tracker.gaps();
    let (slots, slot_ns) = shared.tracker.slots();
    let end_ns = ended.as_nanos() as u64;
    // Windows follow the actual starts: faults run concurrently, in whatever order they began.
    let mut starts: Vec<(u64, u64)> = runs.iter().flatten().map(|r| (r.started.as_nanos() as u64, r.reconnects_before)).collect();
    starts.sort_unstable();
    let next_after = |from: u64| starts.iter().find(|(s, _)| *s > from).copied();
    let judge = |r: &FaultRun| -> FaultVerdict {
        let from = r.started.as_nanos() as u64;
        let next = next_after(from);
        let to = next.map_or(end_ns, |n| n.0);
        let (first_error, errors) = shared.tracker.errors_between(from, to);
        // Only the workloads the plan runs during the window: an idle one has no verdict.
        let running = running_workloads(&shared.plan, from, to);
        let outage_by_workload_s: BTreeMap<String, f64> = shared
            .workloads
            .iter()
            .enumerate()
            .filter(|(_, wl)| running.contains(&wl.name.as_str()))
            .map(|(w, wl)| (wl.name.clone(), resilience::longest_outage(&gaps, Some(w as u16), from, to) as f64 / 1e9))
            .collect();
        let outage_by_shard_s: BTreeMap<String, f64> = shared
            .shards
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), resilience::longest_outage(&gaps, Some(shared.tracker.shard_stream(i as u16)), from, to) as f64 / 1e9))
            .collect();
        let stream_name = |st: u16| -> Option<&String> {
            let st = st as usize;
            match st.checked_sub(shared.workloads.len()) {
                None => shared.workloads.get(st).map(|w| &w.name).filter(|n| outage_by_workload_s.contains_key(*n)),
                Some(shard) => shared.shards.get(shard),
            }
        };
        let window_gaps: Vec<GapRecord> = gaps
            .iter()
            .filter(|g| g.to_ns > from && g.from_ns < to)
            .filter_map(|g| {
                Some(GapRecord { stream: stream_name(g.workload)?.clone(), from_s: g.from_ns.max(from) as f64 / 1e9, to_s: g.to_ns.min(to) as f64 / 1e9 })
            })
            .take(MAX_GAPS)
            .collect();
        let recovered = resilience::recovery(&slots, slot_ns, &gaps, from, to, &shared.plan);
        let (recovery, recovery_s) = match recovered.outcome {
            resilience::Outcome::Back(ns) => (Recovery::Recovered, Some(ns as f64 / 1e9)),
            resilience::Outcome::NotBack => (Recovery::NotRecovered, None),
            resilience::Outcome::NoLevel => (Recovery::NoLevel, None),
            resilience::Outcome::TooShort => (Recovery::TooShort, None),
        };
        FaultVerdict {
            gaps: window_gaps,
            name: r.fault.name.clone(),
            action: crate::plan::describe_action(&r.fault.action),
            at_s: r.started.as_secs_f64(),
            planned_s: Some(r.fault.at.as_secs_f64()),
            late: r.started > r.fault.at + faults::LATE,
            finished_s: r.finished.as_secs_f64(),
            ok: r.ok,
            required: r.fault.required,
            detail: r.detail.clone(),
            in_flight: r.in_flight,
            time_to_first_error_s: first_error.map(|t| t.saturating_sub(from) as f64 / 1e9),
            outage_s: outage_by_workload_s.values().chain(outage_by_shard_s.values()).copied().fold(0.0, f64::max),
            outage_by_workload_s,
            outage_by_shard_s,
            recovery_s,
            recovery: Some(recovery),
            recovery_level_ops: recovered.level_per_sec.map(|l| (l * 10.0).round() / 10.0),
            errors,
            reconnects: (!shared.metrics.conns.is_hidden("reconnects")).then(|| next.map_or(reconnects_end, |n| n.1).saturating_sub(r.reconnects_before)),
            window_end_s: to as f64 / 1e9,
            steps: step_verdicts(r, to, shared, &gaps),
            maintenance: r.maintenance.clone(),
        }
    };
    runs.iter().map(|r| r.as_ref().map(judge)).collect()
}

/// Each step of a multi-step fault over its own window (until the next step; the last one until
/// the fault's window ends). A step that touched one cluster shard is judged by that shard's
/// outage, so the steps and the fault's outage by shard tell the same story; other steps by the
/// workloads running.
fn step_verdicts(r: &FaultRun, window_end: u64, shared: &Shared, gaps: &[resilience::Gap]) -> Vec<StepVerdict> {
    r.steps
        .iter()
        .enumerate()
        .map(|(j, s)| {
            let from = s.started.as_nanos() as u64;
            let until = r.steps.get(j + 1).map_or(window_end, |n| n.started.as_nanos() as u64);
            let streams: Vec<u16> = match s.shard.filter(|i| (*i as usize) < shared.shards.len()) {
                Some(i) => vec![shared.tracker.shard_stream(i as u16)],
                None => {
                    let running = running_workloads(&shared.plan, from, until);
                    shared.workloads.iter().enumerate().filter(|(_, wl)| running.contains(&wl.name.as_str())).map(|(w, _)| w as u16).collect()
                }
            };
            StepVerdict {
                name: s.name.clone(),
                shard: s.shard,
                at_s: s.started.as_secs_f64(),
                took_s: s.finished.saturating_sub(s.started).as_secs_f64(),
                ok: s.ok,
                detail: s.detail.clone(),
                outage_s: streams.iter().map(|st| resilience::longest_outage(gaps, Some(*st), from, until) as f64 / 1e9).fold(0.0, f64::max),
                errors: shared.tracker.errors_between(from, until).1,
            }
        })
        .collect()
}

/// Names of the workloads with a share in any phase overlapping `[from, to)` ns.
fn running_workloads(plan: &Plan, from: u64, to: u64) -> Vec<&str> {
    let (from, to) = (Duration::from_nanos(from), Duration::from_nanos(to));
    plan.phases.iter().filter(|p| p.start < to && p.end() > from).flat_map(|p| p.mix.iter().filter(|m| m.percent > 0.0).map(|m| m.name.as_str())).collect()
}

impl resilience::Expected for Plan {
    fn rate_at(&self, offset_ns: u64) -> Option<f64> {
        let at = Duration::from_nanos(offset_ns);
        // A shard schedules its stripe of the plan's operations.
        let share = self.shard.map_or(1.0, |s| f64::from(s.count));
        self.phase_at(at).and_then(|p| p.rate_at(at - p.start)).map(|r| r / share)
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A subscriber could not subscribe.
    #[error("pub/sub subscriber of `{0}` could not subscribe: {1}")]
    Subscribe(String, String),
    /// `--start-at` was already past once the target was ready: running now would be out of phase
    /// with the other shards.
    #[error("the agreed start time {0} passed {late:.3} s before this shard was ready; it does not run out of phase with the others (pick a start further ahead)", late = .1.as_secs_f64())]
    StartPassed(String, Duration),
    /// A custom workload's templates cannot run on this server (unknown command, keys it cannot
    /// locate, keys in different cluster slots, a script that does not load).
    #[error("{0}")]
    Templates(String),
    /// A signal arrived before the run began.
    #[error("interrupted before the agreed start; nothing ran")]
    Interrupted,
}

/// What the caller hands a run besides the plan: how to stop it, where to publish, what to record into.
pub struct RunInputs {
    /// Turns true on SIGINT/SIGTERM.
    pub stop: watch::Receiver<bool>,
    /// Seed for key and operation choices.
    pub seed: u64,
    /// Receives the live status once a second.
    pub live: watch::Sender<Live>,
    /// Where operations are recorded (shared with exporters).
    pub metrics: Arc<RunMetrics>,
    /// Sampled spans: the fraction of operations to sample and where to send them (never blocks).
    pub spans: Option<(f64, tokio::sync::mpsc::Sender<crate::live::SpanRecord>)>,
    /// The redis-rs client, already connected, when the scenario runs through redis-rs.
    pub redis_rs: Option<crate::client::redis_rs::RedisRs>,
    /// Begin phase 0 at this wall-clock instant (`--start-at`: shards start together).
    pub start_at: Option<SystemTime>,
}

/// Runs the plan against a prepared deployment, as a page of steps: subscribe, wait for the agreed
/// start, start the pacer, the collector and the workers, inject the faults at their offsets while
/// the workers run, judge the faults, stop, drain the subscribers, read back what was written.
pub async fn run(plan: &Plan, scenario: &Scenario, deployment: &Deployment, inputs: RunInputs) -> Result<RunResult, RunError> {
    let RunInputs { mut stop, seed, live, metrics, spans, redis_rs, start_at } = inputs;
    let mut workloads: Vec<Workload> =
        scenario.workloads.iter().enumerate().map(|(i, w)| Workload::new(w, i, deployment.cluster.is_some(), &deployment.spec.client_name)).collect();
    templates::prepare(deployment, &scenario.workloads, &mut workloads, seed).await.map_err(RunError::Templates)?;
    let t0_cell: Arc<std::sync::OnceLock<Instant>> = Arc::new(std::sync::OnceLock::new());
    // Besides the workers, stream workloads' consumers, their sampler and their set-up commands
    // check connections out of the same pools.
    let consumers: usize = workloads.iter().filter_map(Workload::stream).map(|s| s.consumers).sum();
    let others = if workloads.iter().any(|w| w.stream().is_some()) { consumers + 2 } else { 0 };
    let client = client_for(scenario, deployment, redis_rs, &metrics, plan.max_workers() as usize, others);
    let redis_rs = match &client {
        crate::client::Client::RedisRs(c) => Some(c),
        crate::client::Client::Native(_) => None,
    };
    let subscribers = subscribe(plan, scenario, deployment, &workloads, redis_rs, &metrics, &t0_cell).await?;
    streams::create_groups(&client, &workloads, &metrics, seed).await.map_err(RunError::Templates)?;
    wait_for_start(start_at, &mut stop).await?;
    let t0 = Instant::now();
    let _ = t0_cell.set(t0);
    let started_at = SystemTime::now();
    let pacer_stop = Arc::new(AtomicBool::new(false));
    let (tokens, pacer) = pacer::start(&plan.phases, plan.shard, t0, Arc::clone(&pacer_stop));
    let shared = Arc::new(Shared::new(plan, scenario, deployment, workloads, tokens, client, &metrics, seed, spans, t0));
    let (collector_stop_tx, collector_stop) = watch::channel(false);
    let collector = tokio::spawn(collect_series(Arc::clone(&shared), collector_stop, live).in_current_span());
    let consumers = streams::start(&shared);
    let workers: Vec<_> =
        (0..plan.max_workers() as usize).map(|id| tokio::spawn(worker::run(id, Arc::clone(&shared), stop.clone()).in_current_span())).collect();
    let run_client = deployment.spec.client_name.clone();
    let fault_ctx = faults::Context {
        deployment,
        run_client: &run_client,
        in_flight: &shared.tracker.in_flight,
        reconnects: &metrics.conns.reconnects,
        shard: plan.shard,
        t0,
        end: plan.total_duration,
    };
    let mut stopped = stopped::Stopped::default();
    let ((fault_runs, fault_panics), written) = tokio::join!(faults::drive(&plan.faults, &fault_ctx, stop.clone()), join_workers(workers, &mut stopped));
    for (name, payload) in &fault_panics {
        stopped.note("fault", format!("`{name}` panicked: {}", stopped::message(&**payload)));
    }
    let interrupted = *stop.borrow_and_update();
    let ended = t0.elapsed();
    shared.tracker.finish(ended.as_nanos() as u64);
    let verdicts = fault_verdicts(&fault_runs, &shared, ended, metrics.conns.reconnects.load(Ordering::Relaxed));
    pacer_stop.store(true, Ordering::Relaxed);
    if let Ok(Err(payload)) = tokio::task::spawn_blocking(move || pacer.join()).await {
        stopped.panicked("pacer", &*payload);
    }
    subscribers.drain_and_stop(&shared.workloads, &mut stopped).await;
    let streams = consumers.drain_and_stop(&shared, &mut stopped).await;
    let _ = collector_stop_tx.send(true);
    let collected = stopped.join("collector", collector).await.unwrap_or_default();
    let (series, blocks) = finish_series(plan, &metrics, collected, ended);
    let verify = verify::check(
        deployment,
        &shared.workloads,
        &written.acks,
        &written.unknown,
        &written.counters,
        written.acks_truncated,
        scenario.connections.command_timeout,
    )
    .await;
    Ok(RunResult {
        started_at,
        ended_at: SystemTime::now(),
        interrupted,
        threads: tokio::runtime::Handle::current().metrics().num_workers(),
        workloads: shared.workloads.iter().map(|w| (w.name.clone(), w.ops.clone())).collect(),
        rows: metrics.merged(),
        blocks,
        commands: metrics.phase_commands(),
        series,
        phases: phase_runs(plan, &shared.tokens, ended),
        pubsub: shared.workloads.iter().filter_map(|w| Some((w.name.clone(), w.pubsub()?.results()))).collect(),
        streams,
        verify,
        connections: {
            let c = &metrics.conns;
            (
                c.opened.load(Ordering::Relaxed),
                c.dropped.load(Ordering::Relaxed),
                c.connect_errors.load(Ordering::Relaxed),
                c.reconnects.load(Ordering::Relaxed),
            )
        },
        hidden: metrics.conns.hidden.get().cloned().unwrap_or_default(),
        cluster_redirects: metrics.conns.cluster_reply_counts(),
        topology_refreshes: metrics.conns.topology_refreshes.load(Ordering::Relaxed),
        faults: verdicts,
        longest_outage_s: longest_outages(&shared, ended),
        stopped_tasks: stopped.lines(),
    })
}

/// The pub/sub subscriber tasks of a run, and how to stop them.
struct Subscribers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Subscribers {
    /// Lets subscribers catch up with what was published, then stops them.
    async fn drain_and_stop(self, workloads: &[Workload], stopped: &mut stopped::Stopped) {
        for w in workloads {
            if let Some(ps) = w.pubsub() {
                ps.drain(Duration::from_secs(2)).await;
            }
        }
        let _ = self.stop.send(true);
        for s in self.tasks {
            stopped.join("subscriber", s).await;
        }
    }
}

/// Starts every pub/sub subscriber and waits until each has subscribed, before anything is
/// published: no message goes unseen. Their clock starts with the run (`t0_cell`).
async fn subscribe(
    plan: &Plan,
    scenario: &Scenario,
    deployment: &Deployment,
    workloads: &[Workload],
    redis_rs: Option<&crate::client::redis_rs::RedisRs>,
    metrics: &Arc<RunMetrics>,
    t0_cell: &Arc<std::sync::OnceLock<Instant>>,
) -> Result<Subscribers, RunError> {
    let (stop, stopped) = watch::channel(false);
    let phase_ends: Vec<Duration> = plan.phases.iter().map(|p| p.end()).collect();
    let mut tasks = Vec::new();
    let cluster_nodes = deployment.cluster.as_ref().map(|t| t.nodes()).unwrap_or_default();
    for w in workloads {
        let Some(ps) = w.pubsub() else { continue };
        for id in 0..ps.subscribers {
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            let clock = {
                let t0_cell = Arc::clone(t0_cell);
                let ends = phase_ends.clone();
                Arc::new(move || {
                    let t0 = *t0_cell.get_or_init(Instant::now);
                    let now = t0.elapsed();
                    let phase = ends.iter().position(|e| now < *e).unwrap_or(ends.len().saturating_sub(1));
                    (now.as_nanos() as u64, phase as u16)
                }) as Arc<dyn Fn() -> (u64, u16) + Send + Sync>
            };
            let ctx = pubsub::SubscriberCtx {
                metrics: Arc::clone(metrics),
                clock,
                stop: stopped.clone(),
                retry: scenario.connections.retry.clone(),
                nodes: cluster_nodes.clone(),
            };
            let via = match redis_rs {
                Some(c) => pubsub::SubscribeVia::RedisRs(c.pubsub_source()),
                None => pubsub::SubscribeVia::Native(deployment.spec.clone()),
            };
            tasks.push(tokio::spawn(pubsub::subscriber(Arc::clone(ps), id, via, ctx, ready_tx).in_current_span()));
            match ready_rx.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(RunError::Subscribe(w.name.clone(), e)),
                Err(_) => return Err(RunError::Subscribe(w.name.clone(), "subscriber ended".into())),
            }
        }
    }
    Ok(Subscribers { tasks, stop })
}

/// Waits for `--start-at`: everything is connected and subscribed, only the clock is left.
async fn wait_for_start(start_at: Option<SystemTime>, stop: &mut watch::Receiver<bool>) -> Result<(), RunError> {
    let Some(at) = start_at else { return Ok(()) };
    let wait = at.duration_since(SystemTime::now()).map_err(|late| RunError::StartPassed(crate::units::rfc3339(at), late.duration()))?;
    tracing::info!(start_at = %crate::units::rfc3339(at), wait_s = wait.as_secs_f64(), "waiting for the agreed start");
    tokio::select! {
        () = tokio::time::sleep(wait) => Ok(()),
        _ = stop.wait_for(|s| *s) => Err(RunError::Interrupted),
    }
}

/// The client the round trips go through: redis-rs when the scenario asks for it, else the native
/// engine's pools. With either, each of `workers` keeps its connection between round trips when
/// the pools have room for them and for `others` (see [`Pools::keep_connections`]).
fn client_for(
    scenario: &Scenario,
    deployment: &Deployment,
    redis_rs: Option<crate::client::redis_rs::RedisRs>,
    metrics: &Arc<RunMetrics>,
    workers: usize,
    others: usize,
) -> Client {
    match redis_rs {
        Some(mut c) => {
            let keep = c.keep_connections(workers, others);
            tracing::debug!(workers, keep, "redis-rs: workers keep their connections between round trips");
            Client::RedisRs(c)
        }
        None => Client::Native(Native {
            pools: {
                let mut pools = Pools::new(
                    &deployment.spec,
                    &scenario.connections,
                    metrics,
                    deployment.cluster.as_ref().map(|t| (t, deployment.seeds.as_slice(), scenario.target.read_from_replicas)),
                );
                // Replica reads take a second connection beside a kept one, from the same pool
                // when a sentinel target has no healthy replica: the budget would not hold.
                let keep = !scenario.target.read_from_replicas && pools.keep_connections(workers, others);
                tracing::debug!(workers, keep, "workers keep their connections between round trips");
                pools
            },
            metrics: Arc::clone(metrics),
            command_timeout: scenario.connections.command_timeout,
            retry: scenario.connections.retry.clone(),
        }),
    }
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    fn new(
        plan: &Plan,
        scenario: &Scenario,
        deployment: &Deployment,
        workloads: Vec<Workload>,
        tokens: Vec<Option<Arc<pacer::Tokens>>>,
        client: Client,
        metrics: &Arc<RunMetrics>,
        seed: u64,
        spans: Option<(f64, tokio::sync::mpsc::Sender<crate::live::SpanRecord>)>,
        t0: Instant,
    ) -> Shared {
        let max_workers = plan.max_workers() as usize;
        let mixes =
            plan.phases.iter().map(|p| Weighted::new(workloads.iter().map(|w| p.mix.iter().find(|m| m.name == w.name).map_or(0.0, |m| m.percent)))).collect();
        let shards: Vec<String> =
            deployment.cluster.as_ref().map(|t| t.shards.iter().enumerate().map(|(i, s)| format!("shard {i} ({})", s.master)).collect()).unwrap_or_default();
        Shared {
            plan: plan.clone(),
            t0,
            seed,
            mixes,
            tokens,
            client,
            metrics: Arc::clone(metrics),
            writers: max_workers.max(1),
            spans,
            tracker: resilience::Tracker::new(workloads.len(), shards.len(), max_workers, plan.total_duration),
            workloads,
            retry: scenario.connections.retry.clone(),
            read_from_replicas: scenario.target.read_from_replicas,
            shard_of_slot: deployment.cluster.as_ref().map(|t| t.owner.clone()).unwrap_or_default(),
            shards,
        }
    }
}

/// What the workers acknowledged, for verification.
#[derive(Default)]
struct Written {
    acks: HashMap<(u16, u64), u64>,
    unknown: worker::Unknown,
    acks_truncated: bool,
    counters: worker::Counters,
}

/// Waits for every worker and gathers what they acknowledged; a worker that stopped on a bug is
/// noted in `stopped` (its acknowledged writes are lost with it, and the run fails).
async fn join_workers(workers: Vec<tokio::task::JoinHandle<worker::WorkerResult>>, stopped: &mut stopped::Stopped) -> Written {
    let mut out = Written::default();
    for w in workers {
        if let Some(r) = stopped.join("worker", w).await {
            out.acks_truncated |= r.acks_truncated;
            out.acks.extend(r.acks);
            for (id, writes) in r.unknown {
                out.unknown.entry(id).or_default().absorb(writes);
            }
            for (id, t) in r.counters {
                let sum = out.counters.entry(id).or_default();
                sum.acked += t.acked;
                sum.uncertain += t.uncertain;
            }
        }
    }
    out
}

/// The time series and the rows' blocks once the collector stopped: operations that finished
/// after the last block boundary join their phase's last block, and the last partial second is a
/// point of its own.
fn finish_series(
    plan: &Plan,
    metrics: &RunMetrics,
    collected: (series::Series, f64, BTreeMap<OpKey, Vec<crate::metrics::BlockSample>>),
    ended: Duration,
) -> (Vec<crate::outcome::TimePoint>, BTreeMap<OpKey, Vec<crate::metrics::BlockSample>>) {
    let (mut series, since, mut blocks) = collected;
    let last_block_secs = plan.phases.last().map_or(1.0, |p| p.duration.as_secs_f64() / blocks_in(p) as f64);
    add_blocks(&mut blocks, metrics.take_blocks(last_block_secs), None);
    let last = metrics.take_interval();
    let t_end = ended.as_secs_f64();
    if last.ops > 0 {
        series.add(t_end, t_end - since, &last);
    }
    (series.finish(t_end), blocks)
}

/// Each phase as it ran: its span (cut at `ended` when interrupted) and, in open loop, what the
/// schedule released and what no worker started.
fn phase_runs(plan: &Plan, tokens: &[Option<Arc<pacer::Tokens>>], ended: Duration) -> Vec<PhaseRun> {
    plan.phases
        .iter()
        .zip(tokens)
        .map(|(p, t)| {
            let scheduled = t.as_ref().map(|t| t.released.load(Ordering::Relaxed));
            let backlog = t.as_ref().map(|t| t.released.load(Ordering::Relaxed).saturating_sub(t.taken.load(Ordering::Relaxed)));
            PhaseRun { started: p.start.min(ended), ended: p.end().min(ended), scheduled, backlog }
        })
        .collect()
}

/// Per workload the plan runs, the longest stretch without a success over the whole run, seconds.
fn longest_outages(shared: &Shared, ended: Duration) -> BTreeMap<String, f64> {
    let gaps = shared.tracker.gaps();
    let end = ended.as_nanos() as u64;
    let running = running_workloads(&shared.plan, 0, end);
    shared
        .workloads
        .iter()
        .enumerate()
        .filter(|(_, wl)| running.contains(&wl.name.as_str()))
        .map(|(w, wl)| (wl.name.clone(), resilience::longest_outage(&gaps, Some(w as u16), 0, end) as f64 / 1e9))
        .collect()
}

/// How many equal time blocks a phase is cut into for judging changes between runs: one per
/// second up to 20, so a long phase gives 20 samples per operation and a short one at least one.
pub fn blocks_in(p: &crate::plan::PlannedPhase) -> u32 {
    (p.duration.as_secs() as u32).clamp(1, 20)
}

/// Appends each row's block; a row whose phase is not the one whose block ended (an operation
/// that finished after its phase) joins its own last block.
fn add_blocks(into: &mut BTreeMap<OpKey, Vec<crate::metrics::BlockSample>>, taken: BTreeMap<OpKey, crate::metrics::BlockSample>, phase: Option<u16>) {
    for (k, b) in taken {
        let list = into.entry(k).or_default();
        match list.last_mut() {
            Some(last) if phase != Some(k.phase) => {
                last.count += b.count;
                last.errors += b.errors;
            }
            _ => list.push(b),
        }
    }
}

/// Takes the interval totals once a second until stopped: appends to the time series and
/// publishes the live status (first right away, so displays show the first phase at once). At
/// each block boundary of a phase it takes the rows' block figures.
async fn collect_series(
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    live: watch::Sender<Live>,
) -> (series::Series, f64, BTreeMap<OpKey, Vec<crate::metrics::BlockSample>>) {
    let mut boundaries: std::collections::VecDeque<(Instant, u16, f64)> = shared
        .plan
        .phases
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            let n = blocks_in(p);
            let len = p.duration / n;
            (1..=n).map(move |k| (p.start + len * k, i as u16, len.as_secs_f64()))
        })
        .map(|(at, i, secs)| (shared.t0 + at, i, secs))
        .collect();
    let mut blocks = BTreeMap::new();
    let t0 = shared.t0;
    let mut series = series::Series::default();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::from_std(t0 + Duration::from_secs(1)), Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut prev, mut total_ops, mut total_errors) = (0.0, 0u64, 0u64);
    let names: Arc<Vec<(String, Vec<&'static str>)>> = Arc::new(shared.workloads.iter().map(|w| (w.name.clone(), w.ops.clone())).collect());
    let status = |elapsed: Duration, interval: Option<crate::metrics::IntervalStats>, secs: f64, ops: u64, errors: u64| {
        let phase = shared.plan.phase_at(elapsed);
        Live {
            workloads: Arc::clone(&names),
            pubsub: shared
                .workloads
                .iter()
                .filter_map(|w| {
                    let ps = w.pubsub()?;
                    Some(PubsubLive { workload: w.name.clone(), channels: ps.channel_counts(), received: ps.received_counts() })
                })
                .collect(),
            streams: shared.workloads.iter().filter_map(|w| w.stream()).flat_map(|s| s.live()).collect(),
            maintenance: shared.client.maintenance().map(|m| m.report("native").live()),
            elapsed,
            phase: shared.plan.phases.iter().position(|p| elapsed >= p.start && elapsed < p.end()),
            interval,
            interval_secs: secs,
            total_ops: ops,
            total_errors: errors,
            workers: phase.map_or(0, |p| p.workers_at(elapsed - p.start)),
            connections: shared.client.open_connections(),
            target_rate: phase.and_then(|p| p.rate_at(elapsed - p.start)),
        }
    };
    let mut logged_phase = None;
    let mut log_phase = |now: &Live| {
        if now.phase != logged_phase {
            if let Some(p) = now.phase.and_then(|i| shared.plan.phases.get(i)) {
                tracing::info!(phase = %p.name, workers = now.workers, target_rate = ?now.target_rate, "phase running");
            }
            logged_phase = now.phase;
        }
    };
    let first = status(Duration::ZERO, None, 0.0, 0, 0);
    log_phase(&first);
    let _ = live.send(first);
    loop {
        let next_block = boundaries.front().map_or_else(|| t0 + Duration::from_secs(86_400 * 365), |b| b.0);
        tokio::select! {
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(next_block)) => {
                if let Some((_, phase, secs)) = boundaries.pop_front() {
                    add_blocks(&mut blocks, shared.metrics.take_blocks(secs), Some(phase));
                }
            }
            _ = tick.tick() => {
                let elapsed = t0.elapsed();
                let t = elapsed.as_secs_f64();
                let iv = shared.metrics.take_interval();
                series.add(t, t - prev, &iv);
                total_ops += iv.ops;
                total_errors += iv.errors;
                let now = status(elapsed, Some(iv), t - prev, total_ops, total_errors);
                log_phase(&now);
                let _ = live.send(now);
                prev = t;
            }
            _ = stop.changed() => {
                // The last word for exporters that outlive the run (`--linger`): stream and
                // pub/sub figures as they ended, after the drain.
                live.send_modify(|l| {
                    let end = status(t0.elapsed(), None, 0.0, total_ops, total_errors);
                    l.streams = end.streams;
                    l.pubsub = end.pubsub;
                });
                return (series, prev, blocks);
            }
        }
    }
}
