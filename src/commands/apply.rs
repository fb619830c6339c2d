//! `redis-test apply`: load → plan → prepare the target → run → clean up → report → exit code.

use std::path::PathBuf;
use std::time::SystemTime;

use tokio::sync::watch;

use super::load_or_report;
use crate::cli::ApplyArgs;
use crate::deployment;
use crate::executor;
use crate::exit;
use crate::plan::{Plan, compile};
use crate::report::{self, CleanupReport, Report};
use crate::scenario::Scenario;
use crate::scenario::model::Endpoint;

/// Runs `apply` and returns the exit code.
pub fn apply(args: &ApplyArgs) -> u8 {
    let _log_guard = match crate::logging::init(args.log_level.as_deref(), args.log_file.as_deref(), args.log_rotation) {
        Ok(g) => g,
        Err(e) => {
            crate::errln!("error: {e}");
            return exit::INVALID;
        }
    };
    let scenario = match load_or_report(&args.file, &args.inputs) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Some(url) = &args.pushgateway
        && let Err(e) = crate::http::Endpoint::parse(url, None)
    {
        crate::errln!("error: --pushgateway: {e}");
        return exit::INVALID;
    }
    let shard = match shard_of(args, &scenario) {
        Ok(s) => s,
        Err(e) => {
            crate::errln!("error: {e}");
            return exit::INVALID;
        }
    };
    let cleanup_wanted = scenario.cleanup;
    // Every shard records the whole plan's fingerprint: `merge` refuses shards of different plans.
    let fingerprint = compile(&scenario, args.time_scale).fingerprint();
    let (scenario, shard) = match shard {
        Some((index, count)) => {
            let (s, shard) = crate::shard::divide(&scenario, index, count);
            (s, Some(shard))
        }
        None => (scenario, None),
    };
    let mut plan = compile(&scenario, args.time_scale);
    plan.shard = shard;
    let run_id = match args.run_id.clone().or_else(|| scenario.metrics.run_id.clone()) {
        Some(id) => id,
        // Shards name one run: an id agreed on, or the agreed start time.
        None => match (shard, args.start_at) {
            (None, _) => new_run_id(),
            (Some(_), Some(at)) => format!("start-{}", report::rfc3339(at).chars().filter(char::is_ascii_alphanumeric).collect::<String>()),
            (Some(_), None) => {
                crate::errln!("error: a sharded run needs `--run-id ID` or `--start-at TIME`, so that every shard names the same run");
                return exit::INVALID;
            }
        },
    };
    if let Some(at) = args.start_at
        && at.duration_since(SystemTime::now()).is_ok_and(|ahead| ahead > args.start_at_max)
    {
        crate::errln!(
            "error: the start time {} is more than {} ahead (--start-at-max); is it a typo? Raise --start-at-max to wait that long",
            report::rfc3339(at),
            crate::units::format_duration(args.start_at_max)
        );
        return exit::INVALID;
    }
    if let Some(at) = args.start_at
        && at < SystemTime::now()
    {
        crate::errln!("error: the start time {} has already passed; a shard does not run out of phase with the others", report::rfc3339(at));
        return exit::CANNOT_RUN;
    }
    let Ok(json_path) = output_path(args.json.as_ref().or(scenario.output.json.as_ref()), &scenario.name, &run_id, "report") else { return exit::CANNOT_RUN };
    let Ok(html_path) = output_path(args.html.as_ref().or(scenario.output.html.as_ref()), &scenario.name, &run_id, "HTML report") else {
        return exit::CANNOT_RUN;
    };
    let Ok(junit_path) = output_path(args.junit.as_ref().or(scenario.output.junit.as_ref()), &scenario.name, &run_id, "JUnit XML") else {
        return exit::CANNOT_RUN;
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        builder.worker_threads(n);
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            crate::errln!("error: cannot start the async runtime: {e}");
            return exit::CANNOT_RUN;
        }
    };
    let span = tracing::info_span!("run", run_id = %run_id);
    let outputs = Outputs { json: json_path, html: html_path, junit: junit_path };
    let code = runtime.block_on(tracing::Instrument::instrument(run(args, &scenario, &plan, &run_id, &fingerprint, outputs), span));
    if let Some(s) = plan.shard.filter(|_| cleanup_wanted && code != exit::CANNOT_RUN && code != exit::INVALID) {
        // A shard that finishes first must not remove keys the others still use or verify.
        crate::outln!("cleanup: skipped on shard {} of {}; once every shard has finished: redis-test cleanup {}", s.index, s.count, args.file.display());
    }
    code
}

/// `--shard I/N`, or `--shards N` with the index from `JOB_COMPLETION_INDEX`; refused on local
/// targets (every shard would start and measure a deployment of its own).
fn shard_of(args: &ApplyArgs, scenario: &Scenario) -> Result<Option<(u32, u32)>, String> {
    let shard = match (args.shard, args.shards) {
        (Some(s), _) => Some(s),
        (None, Some(n)) => {
            let index = std::env::var("JOB_COMPLETION_INDEX")
                .map_err(|_| "`--shards N` takes the shard's index from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job sets it), which is not set: set it, or use `--shard I/N`".to_owned())?;
            let index: u32 = index.trim().parse().map_err(|_| format!("JOB_COMPLETION_INDEX `{index}` is not a number"))?;
            Some(crate::shard::Shard::parse(&format!("{index}/{n}"))?)
        }
        (None, None) => None,
    };
    if shard.is_some() && matches!(scenario.target.endpoint, Endpoint::Local(_)) {
        return Err("a sharded run needs a shared target (`target.url`, or `--target`): with a local target every shard would start and measure a deployment of its own".into());
    }
    Ok(shard)
}

/// Where the reports go (checked writable before the run).
struct Outputs {
    json: Option<PathBuf>,
    html: Option<PathBuf>,
    junit: Option<PathBuf>,
}

/// A run, as a page of steps: configure the exporters, prepare the target, connect the client
/// under test, start the exporters, execute the plan, clean up, judge, publish, linger. Each step
/// returns the exit code it ends the run with when it cannot go on.
async fn run(args: &ApplyArgs, scenario: &Scenario, plan: &Plan, run_id: &str, fingerprint: &str, outputs: Outputs) -> u8 {
    let labels = common_labels(scenario, run_id, plan.shard);
    let exporters = match configure_exporters(args, scenario, run_id, &labels).await {
        Ok(e) => e,
        Err(code) => return code,
    };
    let signals = SignalCount::start();
    announce(args, scenario, plan, run_id);
    let metrics = std::sync::Arc::new(crate::metrics::RunMetrics::new());
    let deployment = match prepare_target(scenario, run_id, &metrics, &signals).await {
        Ok(d) => d,
        Err(code) => return code,
    };
    let redis_rs = match connect_client_under_test(scenario, &deployment, &metrics).await {
        Ok(c) => c,
        Err(code) => {
            deployment.shutdown().await;
            return code;
        }
    };
    let (live_tx, live_rx) = watch::channel(executor::Live::default());
    let source =
        std::sync::Arc::new(report::families::Source { plan: plan.clone(), metrics: std::sync::Arc::clone(&metrics), live: live_tx.subscribe(), labels });
    let mut running = exporters.start(args, &source, &deployment);
    let tally = std::sync::Arc::clone(&metrics.tally);
    let progress = (!args.quiet).then(|| tokio::spawn(report::progress::show(plan.clone(), live_rx, report::progress::ProgressOptions::detect(args.interval))));
    let inputs = executor::RunInputs {
        stop: stop_on_signal(&signals),
        seed: seed_of(args, plan),
        live: live_tx,
        metrics,
        spans: running.spans.take(),
        redis_rs,
        start_at: args.start_at,
    };
    let result = executor::run(plan, scenario, &deployment, inputs).await;
    if let Some(p) = progress {
        let _ = p.await;
    }
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            crate::errln!("error: {e}");
            deployment.shutdown().await;
            return if matches!(e, executor::RunError::Interrupted) { exit::INTERRUPTED } else { exit::CANNOT_RUN };
        }
    };
    let cleanup = clean_up(args, scenario, &deployment, &signals).await;
    let moves = deployment.spec.follow.as_ref().map(|m| m.moves()).unwrap_or_default();
    let maintenance = maintenance_report(scenario, &deployment);
    deployment.shutdown().await;
    let mut report: Report = report::build(run_id, plan, &result, cleanup);
    report.plan_fingerprint = Some(fingerprint.to_owned());
    report.instance_id = Some(source.labels.instance_id.clone());
    report.other_commands = tally.snapshot();
    report.master_moves =
        moves.into_iter().map(|(t, from, to)| report::MasterMove { at: report::rfc3339(t), from: from.to_string(), to: to.to_string() }).collect();
    report.maintenance = maintenance;
    running.finish_exports(args, scenario, &source, &mut report).await;
    judge(plan, &mut report);
    if let Err(code) = publish(&report, &outputs) {
        return code;
    }
    running.linger(args, &signals).await;
    report.exit_code()
}

/// The Prometheus listener (bound now, so a taken port fails before the run) and the OTLP settings.
struct Exporters {
    listener: Option<tokio::net::TcpListener>,
    otlp: Option<report::otlp::OtlpConfig>,
}

/// Exporters while the run goes on: the /metrics server, the OTLP task, the span channel.
struct RunningExporters {
    endpoint: Option<tokio::task::JoinHandle<()>>,
    endpoint_stop: watch::Sender<bool>,
    otlp: Option<tokio::task::JoinHandle<report::otlp::ExportStats>>,
    otlp_stop: watch::Sender<bool>,
    spans: Option<(f64, tokio::sync::mpsc::Sender<crate::live::SpanRecord>)>,
}

/// Resolves the OTLP settings and binds the Prometheus listener; a mistake in either ends the run
/// before it starts (2 for settings, 3 for a port that cannot be had).
async fn configure_exporters(args: &ApplyArgs, scenario: &Scenario, run_id: &str, labels: &report::families::CommonLabels) -> Result<Exporters, u8> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let otlp = match report::otlp::OtlpConfig::resolve(scenario, &env, run_id, &labels.instance_id) {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            crate::errln!("error: {e}");
            return Err(exit::INVALID);
        }
        None => None,
    };
    let listener = match args.prometheus.or(scenario.metrics.prometheus) {
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => Some(l),
            Err(e) => {
                crate::errln!("error: cannot serve Prometheus metrics on {addr}: {e}");
                return Err(exit::CANNOT_RUN);
            }
        },
        None => None,
    };
    Ok(Exporters { listener, otlp })
}

impl Exporters {
    /// Serves /metrics and starts the OTLP exporter (with its span channel when tracing).
    fn start(self, args: &ApplyArgs, source: &std::sync::Arc<report::families::Source>, deployment: &deployment::Deployment) -> RunningExporters {
        let (endpoint_stop, endpoint_stopped) = watch::channel(false);
        let endpoint = self.listener.map(|l| {
            if !args.quiet {
                crate::errln!("redis-test: Prometheus metrics on http://{}/metrics", l.local_addr().map_or_else(|_| "?".into(), |a| a.to_string()));
            }
            tokio::spawn(report::prometheus::serve(l, std::sync::Arc::clone(source), endpoint_stopped))
        });
        let mut spans = None;
        let (otlp_stop, otlp_stopped) = watch::channel(false);
        let otlp = self.otlp.map(|cfg| {
            if !args.quiet {
                crate::errln!("redis-test: OTLP export to {} ({:?}) every {}", cfg.endpoint, cfg.protocol, crate::units::format_duration(cfg.interval));
            }
            let rx = cfg.traces.map(|ratio| {
                let (tx, rx) = tokio::sync::mpsc::channel(10_000);
                spans = Some((ratio, tx));
                rx
            });
            let server = (deployment.spec.addr.host.clone(), deployment.spec.addr.port);
            tokio::spawn(report::otlp::run(cfg, std::sync::Arc::clone(source), rx, server, otlp_stopped))
        });
        RunningExporters { endpoint, endpoint_stop, otlp, otlp_stop, spans }
    }
}

impl RunningExporters {
    /// Pushes the final metrics to a Pushgateway and flushes OTLP once more, each bounded in time
    /// and recorded in the report; neither changes the verdict.
    async fn finish_exports(&mut self, args: &ApplyArgs, scenario: &Scenario, source: &report::families::Source, report: &mut Report) {
        if let Some(url) = args.pushgateway.as_ref().or(scenario.metrics.pushgateway.as_ref()) {
            // Bounded: a Pushgateway that does not answer costs the run 5 s at most, never its verdict.
            report.pushgateway = Some(report::pushgateway::push(url, source, std::time::Duration::from_secs(5)).await);
        }
        if let Some(task) = self.otlp.take() {
            // The final flush: the exporter sends once more when told to stop, bounded by its timeout.
            let _ = self.otlp_stop.send(true);
            report.otlp = task.await.ok();
        }
    }

    /// Keeps /metrics up for `--linger` (a signal ends it), then stops it.
    async fn linger(self, args: &ApplyArgs, signals: &SignalCount) {
        let Some(endpoint) = self.endpoint else { return };
        if let Some(linger) = args.linger {
            // Counted before the line that invites the signal: one sent as soon as it is read must
            // end the linger, not be taken for an earlier stage's (seen on a fresh clone: the
            // linger ran its whole 60 s).
            let seen = signals.count();
            if !args.quiet {
                crate::errln!("redis-test: keeping /metrics up for {} (a signal ends it)", crate::units::format_duration(linger));
            }
            tokio::select! {
                () = tokio::time::sleep(linger) => {}
                () = signals.next(seen) => {}
            }
        }
        let _ = self.endpoint_stop.send(true);
        let _ = endpoint.await;
    }
}

/// The run's first line on stderr, and its log line.
fn announce(args: &ApplyArgs, scenario: &Scenario, plan: &Plan, run_id: &str) {
    if !args.quiet {
        crate::errln!("redis-test: run {run_id}: {} for {} against {}", scenario.name, crate::units::format_duration(plan.total_duration), plan.target.address);
    }
    tracing::info!(scenario = %scenario.name, target = %plan.target.address, duration = %crate::units::format_duration(plan.total_duration), "run starting");
}

/// Reaches the target, or starts the local deployment. Starting a local cluster takes seconds: a
/// signal then drops the half-built deployment, whose processes are killed on drop, instead of
/// leaving them behind.
async fn prepare_target(
    scenario: &Scenario,
    run_id: &str,
    metrics: &std::sync::Arc<crate::metrics::RunMetrics>,
    signals: &SignalCount,
) -> Result<deployment::Deployment, u8> {
    let client_name = format!("redis-test:{run_id}");
    let prepared = tokio::select! {
        d = deployment::prepare(&scenario.target, &scenario.connections, &client_name, Some(std::sync::Arc::clone(&metrics.tally))) => d,
        () = signals.next(0) => {
            crate::errln!("redis-test: interrupted while preparing the target; nothing ran, no report written");
            return Err(exit::INTERRUPTED);
        }
    };
    match prepared {
        Ok(d) => {
            tracing::info!(address = %d.spec.addr, local = d.local.is_some(), "target ready");
            Ok(d)
        }
        Err(e) => {
            // Logged for log files; the console gets the one `error:` line below.
            tracing::info!(error = %e, "target unusable");
            crate::errln!("error: {e}");
            Err(exit::CANNOT_RUN)
        }
    }
}

/// Connects redis-rs when the scenario runs through it (proving credentials and certificates
/// before the run starts); `None` for the native engine.
async fn connect_client_under_test(
    scenario: &Scenario,
    deployment: &deployment::Deployment,
    metrics: &std::sync::Arc<crate::metrics::RunMetrics>,
) -> Result<Option<crate::client::redis_rs::RedisRs>, u8> {
    match scenario.connections.client {
        crate::scenario::raw::Client::Native => Ok(None),
        crate::scenario::raw::Client::RedisRs => match crate::client::redis_rs::RedisRs::connect(deployment.reach(), scenario, metrics).await {
            Ok(c) => Ok(Some(c)),
            Err(e) => {
                tracing::info!(error = %e, "target unusable");
                crate::errln!("error: {e}");
                Err(exit::CANNOT_RUN)
            }
        },
    }
}

/// A stop signal for the executor that turns true at the first SIGINT/SIGTERM/SIGHUP.
fn stop_on_signal(signals: &SignalCount) -> watch::Receiver<bool> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let signals = signals.clone();
    tokio::spawn(async move {
        signals.next(0).await;
        crate::errln!(
            "redis-test: interrupted; finishing operations in flight and writing the report (a second signal also skips cleanup, a third exits at once)"
        );
        let _ = stop_tx.send(true);
    });
    stop_rx
}

/// `--seed`, or the clock; shards given one `--seed` still choose differently from one another.
fn seed_of(args: &ApplyArgs, plan: &Plan) -> u64 {
    let seed = args.seed.unwrap_or_else(|| SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
    plan.shard.map_or(seed, |s| seed ^ u64::from(s.index).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Removes exactly the run's keys from a shared target (a local one is thrown away with its keys).
/// A new signal ends cleanup at once; how far it got is reported.
async fn clean_up(args: &ApplyArgs, scenario: &Scenario, deployment: &deployment::Deployment, signals: &SignalCount) -> Option<CleanupReport> {
    if !scenario.cleanup || !matches!(scenario.target.endpoint, Endpoint::Remote(_)) {
        return None;
    }
    let seen = signals.count();
    if !args.quiet {
        crate::errln!("redis-test: removing the run's keys under `{}` (a signal stops it)", scenario.key_prefix);
    }
    let progress = std::sync::atomic::AtomicU64::new(0);
    let removing = executor::cleanup::remove_prefix_everywhere(deployment, &scenario.key_prefix, scenario.connections.command_timeout, &progress);
    let (removed, error) = tokio::select! {
        r = removing => match r {
            Ok(n) => (n, None),
            Err(e) => (progress.load(std::sync::atomic::Ordering::Relaxed), Some(e.to_string())),
        },
        () = signals.next(seen) => {
            let n = progress.load(std::sync::atomic::Ordering::Relaxed);
            crate::errln!("redis-test: cleanup stopped by a signal after removing {n} keys; run again or remove `{}*` yourself", scenario.key_prefix);
            (n, Some("stopped by a signal".to_owned()))
        }
    };
    let cleanup = CleanupReport { prefix: scenario.key_prefix.clone(), removed, error };
    tracing::info!(prefix = %cleanup.prefix, removed = cleanup.removed, error = ?cleanup.error, "cleanup");
    Some(cleanup)
}

/// Judges the thresholds (a shard leaves them to `merge`: its share cannot meet whole-run rules)
/// and logs each verdict (the summary states them; the log line is for log files).
fn judge(plan: &Plan, report: &mut Report) {
    if plan.shard.is_some() {
        report.deferred_thresholds = plan.thresholds.iter().map(report::thresholds::spec_of).collect();
        return;
    }
    report.thresholds = report::thresholds::evaluate(&plan.thresholds, report);
    for t in &report.thresholds {
        let verdict = if t.passed { "threshold held" } else { "threshold failed" };
        tracing::info!(rule = %t.expr, observed = %t.observed_text, "{verdict}");
    }
}

/// Prints the summary and writes the reports asked for: atomically onto files (the path holds the
/// previous report or the complete new one, never a torn one), as streams into FIFOs and devices.
fn publish(report: &Report, outputs: &Outputs) -> Result<(), u8> {
    crate::out!("{}", report::summary::render(report));
    for (path, what, label) in [(&outputs.json, "report", "report"), (&outputs.html, "HTML report", "html"), (&outputs.junit, "JUnit XML", "junit")] {
        let Some(path) = path else { continue };
        let text = match label {
            "report" => serde_json::to_string_pretty(report).expect("reports serialize") + "\n",
            "html" => report::html::render(report),
            _ => report::junit::render(report),
        };
        if let Err(e) = crate::files::write_output(path, text.as_bytes()) {
            crate::errln!("error: cannot write the {what} to {}: {e} (the previous file there, if any, is unchanged)", path.display());
            return Err(exit::CANNOT_RUN);
        }
        crate::outln!("{label}: {}", path.display());
    }
    Ok(())
}

/// The labels on every exported metric: the scenario's, else the host name, the run id and our
/// version. A shard's instance id ends in `-shard-I`, so shards on one host stay apart.
fn common_labels(scenario: &Scenario, run_id: &str, shard: Option<crate::shard::Shard>) -> report::families::CommonLabels {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "unknown".into());
    let instance_id = scenario.metrics.instance_id.clone().unwrap_or(host);
    report::families::CommonLabels {
        app_name: scenario.metrics.app_name.clone(),
        instance_id: match shard {
            Some(s) => format!("{instance_id}-shard-{}", s.index),
            None => instance_id,
        },
        run_id: run_id.to_owned(),
        version: scenario.metrics.version.clone().unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned()),
    }
}

/// SIGINT, SIGTERM and SIGHUP, counted from the moment this is made to the end of `apply` (before that,
/// either kills the process outright, which would leave a local deployment's processes behind).
/// Each signal ends the stage that is running (the run, then cleanup, then `--linger`); the third
/// exits at once, with exit code 130.
#[derive(Clone)]
struct SignalCount(watch::Receiver<u32>);

impl SignalCount {
    fn start() -> SignalCount {
        use tokio::signal::unix::{SignalKind, signal};
        let (tx, rx) = watch::channel(0u32);
        let mut int = signal(SignalKind::interrupt()).ok();
        let mut term = signal(SignalKind::terminate()).ok();
        // An SSH session that drops sends SIGHUP: the run ends as on SIGTERM, with its report.
        let mut hup = signal(SignalKind::hangup()).ok();
        tokio::spawn(async move {
            async fn one(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            let mut n = 0;
            loop {
                tokio::select! {
                    () = one(&mut int) => {}
                    () = one(&mut term) => {}
                    () = one(&mut hup) => {}
                }
                n += 1;
                if n >= 3 {
                    crate::errln!("redis-test: third signal; exiting now");
                    std::process::exit(exit::INTERRUPTED.into());
                }
                let _ = tx.send(n);
            }
        });
        SignalCount(rx)
    }

    /// Signals so far.
    fn count(&self) -> u32 {
        *self.0.borrow()
    }

    /// Resolves once more than `seen` signals have arrived.
    async fn next(&self, seen: u32) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|n| *n > seen).await;
    }
}

/// `20261125T204730Z-1a2b`: sortable, and distinct for runs started in the same second.
fn new_run_id() -> String {
    let now = SystemTime::now();
    let stamp: String = humantime::format_rfc3339_seconds(now).to_string().chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let nanos = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{stamp}-{:04x}", (nanos ^ std::process::id()) & 0xffff)
}

/// Fills `{name}` and `{run_id}` in an output path. The values become one file-name component
/// each: anything but letters, digits and `._-` becomes `_`, and a leading dot is escaped, so a
/// scenario named `../../x` cannot write outside the folder its template names.
pub fn fill_template(t: &str, name: &str, run_id: &str) -> PathBuf {
    let safe = |v: &str| {
        let mut s: String = v.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
        if s.starts_with('.') || s.is_empty() {
            s.insert(0, '_');
        }
        s
    };
    PathBuf::from(t.replace("{name}", &safe(name)).replace("{run_id}", &safe(run_id)))
}

/// Resolves an output template and proves it writable before the run starts (printing why not).
fn output_path(template: Option<&String>, name: &str, run_id: &str, what: &str) -> Result<Option<PathBuf>, ()> {
    let Some(path) = template.map(|t| fill_template(t, name, run_id)) else { return Ok(None) };
    match prepare_output(&path) {
        Ok(()) => Ok(Some(path)),
        Err(e) => {
            crate::errln!("error: cannot write the {what} to {}: {e}", path.display());
            Err(())
        }
    }
}

/// Creates the report's folder and proves a file can be written there, before the run starts,
/// without creating the report itself (a run that never starts leaves nothing behind).
fn prepare_output(path: &std::path::Path) -> std::io::Result<()> {
    if path.is_dir() {
        return Err(std::io::Error::other("it is a directory"));
    }
    crate::files::check_writable(path)
}

/// What the client did with maintenance notifications: when it asked, or when the scenario has
/// maintenance faults (then also for a client that never asks — the column without them).
fn maintenance_report(scenario: &Scenario, deployment: &deployment::Deployment) -> Option<crate::client::maintenance::ClientReport> {
    use crate::client::maintenance::ClientReport;
    use crate::scenario::model::FaultAction;
    let has_faults = scenario.faults.iter().any(|f| matches!(f.action, FaultAction::Maintenance { .. } | FaultAction::Notify { .. }));
    let mode = format!("{:?}", scenario.connections.maintenance_notifications).to_lowercase();
    match (&deployment.spec.maintenance, scenario.connections.client) {
        (Some(m), _) => Some(m.report("native")).filter(|r| has_faults || r.enabled_connections + r.unsupported_connections > 0),
        _ if !has_faults => None,
        (None, crate::scenario::raw::Client::RedisRs) => Some(ClientReport {
            client: "redis-rs".into(),
            mode,
            behaviour: "redis-rs does not implement maintenance notifications: it never sends CLIENT MAINT_NOTIFICATIONS, so nothing is announced to it, and its connections are cut when the old endpoint closes".into(),
            ..Default::default()
        }),
        (None, _) => Some(ClientReport {
            client: "native".into(),
            mode,
            behaviour: "notifications off: the client never asks, so nothing is announced to it".into(),
            ..Default::default()
        }),
    }
}
