//! Tasks of a run that stopped before their end — a bug (a panic) in a worker, the collector, the
//! pacer, a fault, a subscriber or a stream consumer. Their results are gone (a worker's acknowledged writes, a
//! second of the series), so the run cannot pass on the figures the rest left: each is noted here
//! and fails the run with its message, never dropped quietly.

use std::collections::BTreeMap;

use tokio::task::{JoinError, JoinHandle};

/// Most lines a run's report gives its stopped tasks (workers panicking with messages of their
/// own would otherwise give one each).
pub const MAX_LINES: usize = 99;

/// The tasks that stopped, by kind of task and message, with how many did.
#[derive(Debug, Default)]
pub struct Stopped(BTreeMap<(&'static str, String), usize>);

impl Stopped {
    /// Waits for `handle`: its result, or `None` with why it stopped noted under `task` (e.g.
    /// "worker").
    pub async fn join<T>(&mut self, task: &'static str, handle: JoinHandle<T>) -> Option<T> {
        match handle.await {
            Ok(v) => Some(v),
            Err(e) => {
                *self.0.entry((task, why(e))).or_default() += 1;
                None
            }
        }
    }

    /// Notes a task (a thread, a future run in place) that panicked with `payload`.
    pub fn panicked(&mut self, task: &'static str, payload: &(dyn std::any::Any + Send)) {
        self.note(task, format!("panicked: {}", message(payload)));
    }

    /// Notes a task that stopped, and why (a fault's line names the fault).
    pub fn note(&mut self, task: &'static str, why: String) {
        *self.0.entry((task, why)).or_default() += 1;
    }

    /// One line per kind of task and message, as the report lists them: at most [`MAX_LINES`],
    /// the rest counted in the last.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .0
            .iter()
            .take(MAX_LINES)
            .map(|((task, why), n)| match n {
                1 => format!("a {task} task stopped before the end: {why}"),
                n => format!("{n} {task} tasks stopped before the end: {why}"),
            })
            .collect();
        let rest: usize = self.0.values().skip(MAX_LINES).sum();
        if rest > 0 {
            out.push(format!("{rest} more tasks stopped before the end, with other messages"));
        }
        out
    }
}

/// Why a task did not finish: its panic's message, or that it was cancelled.
fn why(e: JoinError) -> String {
    if !e.is_panic() {
        return "cancelled".to_owned();
    }
    format!("panicked: {}", message(&*e.into_panic()))
}

/// What `panic!` and `expect` were given.
pub fn message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload.downcast_ref::<&str>().map(|s| (*s).to_owned()).or_else(|| payload.downcast_ref::<String>().cloned());
    text.unwrap_or_else(|| "(no message)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_is_noted_with_its_message_and_counted_with_its_kind() {
        let mut stopped = Stopped::default();
        assert_eq!(stopped.join("worker", tokio::spawn(async { 7 })).await, Some(7));
        assert!(stopped.lines().is_empty(), "a task that finished is not noted");
        for i in 0..3u64 {
            let task = tokio::spawn(async move {
                let far = std::time::Instant::now().checked_add(std::time::Duration::from_secs(u64::MAX / 2 + i));
                far.expect("overflow when adding duration to instant");
            });
            assert_eq!(stopped.join("worker", task).await, None);
        }
        let owned = tokio::spawn(async { panic!("{} of {}", 1, 2) });
        assert_eq!(stopped.join("collector", owned).await, None);
        let thread = std::thread::spawn(|| panic!("the pacer's clock"));
        stopped.panicked("pacer", &*thread.join().unwrap_err());
        stopped.note("fault", "`kill@2s` panicked: a bug".to_owned());
        let pending = tokio::spawn(std::future::pending::<()>());
        pending.abort();
        assert_eq!(stopped.join("subscriber", pending).await, None);
        let mut many = Stopped::default();
        for i in 0..150 {
            many.0.insert(("worker", format!("panicked: worker {i}")), 2);
        }
        let lines = many.lines();
        assert_eq!(lines.len(), MAX_LINES + 1);
        assert_eq!(lines[MAX_LINES], "102 more tasks stopped before the end, with other messages");
        assert_eq!(
            stopped.lines(),
            vec![
                "a collector task stopped before the end: panicked: 1 of 2".to_owned(),
                "a fault task stopped before the end: `kill@2s` panicked: a bug".to_owned(),
                "a pacer task stopped before the end: panicked: the pacer's clock".to_owned(),
                "a subscriber task stopped before the end: cancelled".to_owned(),
                "3 worker tasks stopped before the end: panicked: overflow when adding duration to instant".to_owned(),
            ]
        );
    }
}
