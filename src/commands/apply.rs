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
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
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

async fn run(args: &ApplyArgs, scenario: &Scenario, plan: &Plan, run_id: &str, fingerprint: &str, outputs: Outputs) -> u8 {
    let Outputs { json: json_path, html: html_path, junit: junit_path } = outputs;
    let client_name = format!("redis-test:{run_id}");
    let otlp_config = match report::otlp::OtlpConfig::resolve(
        scenario,
        &|k| std::env::var(k).ok().filter(|v| !v.is_empty()),
        run_id,
        &common_labels(scenario, run_id, plan.shard).instance_id,
    ) {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            crate::errln!("error: {e}");
            return exit::INVALID;
        }
        None => None,
    };
    let prometheus_addr = args.prometheus.or(scenario.metrics.prometheus);
    let listener = match prometheus_addr {
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => Some(l),
            Err(e) => {
                crate::errln!("error: cannot serve Prometheus metrics on {addr}: {e}");
                return exit::CANNOT_RUN;
            }
        },
        None => None,
    };
    let signals = SignalCount::start();
    if !args.quiet {
        crate::errln!("redis-test: run {run_id}: {} for {} against {}", scenario.name, crate::units::format_duration(plan.total_duration), plan.target.address);
    }
    tracing::info!(scenario = %scenario.name, target = %plan.target.address, duration = %crate::units::format_duration(plan.total_duration), "run starting");
    // Starting a local cluster takes seconds: a signal then drops the half-built deployment, whose
    // processes are killed on drop, instead of leaving them behind.
    let metrics = std::sync::Arc::new(crate::metrics::RunMetrics::new());
    let prepared = tokio::select! {
        d = deployment::prepare(&scenario.target, &scenario.connections, &client_name, Some(std::sync::Arc::clone(&metrics.tally))) => d,
        () = signals.next(0) => {
            crate::errln!("redis-test: interrupted while preparing the target; nothing ran, no report written");
            return exit::INTERRUPTED;
        }
    };
    let deployment = match prepared {
        Ok(d) => d,
        Err(e) => {
            // Logged for log files; the console gets the one `error:` line below.
            tracing::info!(error = %e, "target unusable");
            crate::errln!("error: {e}");
            return exit::CANNOT_RUN;
        }
    };
    tracing::info!(address = %deployment.spec.addr, local = deployment.local.is_some(), "target ready");
    let redis_rs = match scenario.connections.client {
        crate::scenario::raw::Client::Native => None,
        crate::scenario::raw::Client::RedisRs => match crate::client::redis_rs::RedisRs::connect(deployment.reach(), scenario, &metrics).await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::info!(error = %e, "target unusable");
                crate::errln!("error: {e}");
                deployment.shutdown().await;
                return exit::CANNOT_RUN;
            }
        },
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopper = {
        let signals = signals.clone();
        tokio::spawn(async move {
            signals.next(0).await;
            crate::errln!(
                "redis-test: interrupted; finishing operations in flight and writing the report (a second signal also skips cleanup, a third exits at once)"
            );
            let _ = stop_tx.send(true);
        })
    };
    let seed = args.seed.unwrap_or_else(|| SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
    // Shards given one `--seed` still choose differently from one another.
    let seed = plan.shard.map_or(seed, |s| seed ^ u64::from(s.index).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let (live_tx, live_rx) = watch::channel(executor::Live::default());
    let progress = (!args.quiet).then(|| tokio::spawn(report::progress::show(plan.clone(), live_rx, report::progress::ProgressOptions::detect(args.interval))));
    let (exporters_stop_tx, exporters_stop) = watch::channel(false);
    let labels = common_labels(scenario, run_id, plan.shard);
    let source = std::sync::Arc::new(report::families::Source {
        plan: plan.clone(),
        metrics: std::sync::Arc::clone(&metrics),
        live: live_tx.subscribe(),
        labels: labels.clone(),
    });
    let endpoint = listener.map(|l| {
        if !args.quiet {
            crate::errln!("redis-test: Prometheus metrics on http://{}/metrics", l.local_addr().map_or_else(|_| "?".into(), |a| a.to_string()));
        }
        tokio::spawn(report::prometheus::serve(l, std::sync::Arc::clone(&source), exporters_stop.clone()))
    });
    let mut spans = None;
    let (otlp_stop_tx, otlp_stop) = watch::channel(false);
    let otlp = match otlp_config {
        Some(cfg) => {
            if !args.quiet {
                crate::errln!("redis-test: OTLP export to {} ({:?}) every {}", cfg.endpoint, cfg.protocol, crate::units::format_duration(cfg.interval));
            }
            let rx = cfg.traces.map(|ratio| {
                let (tx, rx) = tokio::sync::mpsc::channel(10_000);
                spans = Some((ratio, tx));
                rx
            });
            let server = (deployment.spec.addr.host.clone(), deployment.spec.addr.port);
            Some(tokio::spawn(report::otlp::run(cfg, std::sync::Arc::clone(&source), rx, server, otlp_stop)))
        }
        None => None,
    };
    let tally = std::sync::Arc::clone(&metrics.tally);
    let inputs = executor::RunInputs { stop: stop_rx, seed, live: live_tx, metrics, spans, redis_rs, start_at: args.start_at };
    let result = executor::run(plan, scenario, &deployment, inputs).await;
    stopper.abort();
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
    // A local server is thrown away with its keys; a shared one gets exactly ours removed. A new
    // signal ends cleanup at once (how far it got is reported).
    let cleanup = if scenario.cleanup && matches!(scenario.target.endpoint, Endpoint::Remote(_)) {
        let seen = signals.count();
        if !args.quiet {
            crate::errln!("redis-test: removing the run's keys under `{}` (a signal stops it)", scenario.key_prefix);
        }
        let progress = std::sync::atomic::AtomicU64::new(0);
        let removing = executor::cleanup::remove_prefix_everywhere(&deployment, &scenario.key_prefix, scenario.connections.command_timeout, &progress);
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
        Some(CleanupReport { prefix: scenario.key_prefix.clone(), removed, error })
    } else {
        None
    };
    let moves = deployment.spec.follow.as_ref().map(|m| m.moves()).unwrap_or_default();
    deployment.shutdown().await;
    let mut report: Report = report::build(run_id, plan, &result, cleanup);
    report.plan_fingerprint = Some(fingerprint.to_owned());
    report.instance_id = Some(labels.instance_id.clone());
    report.other_commands = tally.snapshot();
    report.master_moves =
        moves.into_iter().map(|(t, from, to)| report::MasterMove { at: report::rfc3339(t), from: from.to_string(), to: to.to_string() }).collect();
    if let Some(url) = args.pushgateway.as_ref().or(scenario.metrics.pushgateway.as_ref()) {
        // Bounded: a Pushgateway that does not answer costs the run 5 s at most, never its verdict.
        report.pushgateway = Some(report::pushgateway::push(url, &source, std::time::Duration::from_secs(5)).await);
    }
    if let Some(task) = otlp {
        // The final flush: the exporter sends once more when told to stop, bounded by its timeout.
        let _ = otlp_stop_tx.send(true);
        report.otlp = task.await.ok();
    }
    if plan.shard.is_some() {
        // A shard's share cannot meet whole-run rules: `merge` judges them on the whole run.
        report.deferred_thresholds = plan.thresholds.iter().map(report::thresholds::spec_of).collect();
    } else {
        report.thresholds = report::thresholds::evaluate(&plan.thresholds, &report);
    }
    for t in &report.thresholds {
        if t.passed {
            tracing::info!(rule = %t.expr, observed = %t.observed_text, "threshold held");
        } else {
            // The summary states every verdict; the log line is for log files, not a second warning.
            tracing::info!(rule = %t.expr, observed = %t.observed_text, "threshold failed");
        }
    }
    if let Some(c) = &report.cleanup {
        tracing::info!(prefix = %c.prefix, removed = c.removed, error = ?c.error, "cleanup");
    }
    crate::out!("{}", report::summary::render(&report));
    // Atomically: the path holds the previous report or the complete new one, never a torn one.
    let json_text = json_path.as_ref().map(|_| serde_json::to_string_pretty(&report).expect("reports serialize") + "\n");
    for (path, what, label, text) in [
        (&json_path, "report", "report", json_text),
        (&html_path, "HTML report", "html", html_path.as_ref().map(|_| report::html::render(&report))),
        (&junit_path, "JUnit XML", "junit", junit_path.as_ref().map(|_| report::junit::render(&report))),
    ] {
        let (Some(path), Some(text)) = (path, text) else { continue };
        if let Err(e) = crate::files::write_output(path, text.as_bytes()) {
            crate::errln!("error: cannot write the {what} to {}: {e} (the previous file there, if any, is unchanged)", path.display());
            return exit::CANNOT_RUN;
        }
        crate::outln!("{label}: {}", path.display());
    }
    if let Some(endpoint) = endpoint {
        if let Some(linger) = args.linger {
            if !args.quiet {
                crate::errln!("redis-test: keeping /metrics up for {} (a signal ends it)", crate::units::format_duration(linger));
            }
            let seen = signals.count();
            tokio::select! {
                () = tokio::time::sleep(linger) => {}
                () = signals.next(seen) => {}
            }
        }
        let _ = exporters_stop_tx.send(true);
        let _ = endpoint.await;
    }
    report.exit_code()
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
