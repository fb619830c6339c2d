//! Before the first phase, `custom` workloads ask the server what the file cannot say: which
//! arguments of each template are keys (COMMAND GETKEYS, so module commands work too), whether a
//! keyless command writes (COMMAND INFO), and the SHA1 of each script (SCRIPT LOAD on every node).
//! Key arguments then get the key prefix; on a cluster, a round trip whose keys would fall in
//! different slots is refused with the template's line.

use std::collections::HashMap;
use std::time::Duration;

use crate::client::native::conn::Conn;
use crate::deployment::Deployment;
use crate::resp::Value;
use crate::workload::Workload;
use crate::workload::custom::{KeyPositions, key_positions_named};

/// Longest any one setup command may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Round trips rendered to check that a cluster round trip's keys share a slot.
const SLOT_SAMPLES: usize = 32;

/// Loads the scripts and locates the keys of every custom workload's templates. The error names
/// the template (`file:line:column`) and what the server said.
pub async fn prepare(deployment: &Deployment, specs: &[crate::scenario::model::Workload], workloads: &mut [Workload], seed: u64) -> Result<(), String> {
    let mut nodes: Option<Vec<crate::client::native::conn::ConnectSpec>> = None;
    for (spec, w) in specs.iter().zip(workloads.iter_mut()) {
        let Some(commands) = spec.custom.as_deref() else { continue };
        if nodes.is_none() {
            nodes = Some(deployment.data_nodes(&deployment.spec, true).await?);
        }
        let node_specs = nodes.as_deref().unwrap_or_default();
        let mut conns = Vec::new();
        for n in node_specs {
            conns.push(Conn::connect(n).await.map_err(|e| format!("custom workload `{}`: cannot reach {}: {e}", spec.name, n.addr))?);
        }
        let shas = load_scripts(&mut conns, &commands.scripts, &spec.name).await?;
        w.custom_mut().ok_or("a custom workload without templates")?.set_scripts(shas);
        let mut rng = crate::keys::worker_rng(seed, usize::MAX);
        let samples = w.custom_samples(&mut rng);
        let mut positions: Vec<KeyPositions> = Vec::new();
        let first = conns.first_mut().ok_or("no node to ask")?;
        for (t, argv) in commands.templates.iter().zip(&samples) {
            let p = match key_positions_named(t) {
                Some(p) => p,
                None => locate_keys(first, argv).await.map_err(|e| format!("{}: `{}`: {e}", t.at, show(&argv[0])))?,
            };
            if p.is_empty() && writes(first, &argv[0]).await.map_err(|e| format!("{}: {e}", t.at))? {
                return Err(format!(
                    "{}: `{}` writes but names no key: it would change the server outside the key prefix (if it has keys, name them with `keys: [..]`)",
                    t.at,
                    show(&argv[0])
                ));
            }
            positions.push(p);
        }
        w.custom_mut().ok_or("a custom workload without templates")?.set_keys(&positions);
        if deployment.cluster.is_some() {
            check_slots(w, commands, &positions, &mut rng)?;
        }
        tracing::info!(workload = %spec.name, keys = ?positions, "custom templates resolved");
    }
    Ok(())
}

/// SCRIPT LOAD of every script on every node; the SHA1s (the same everywhere) by name.
async fn load_scripts(conns: &mut [Conn], scripts: &[(String, String)], workload: &str) -> Result<HashMap<String, String>, String> {
    let mut shas = HashMap::new();
    for (name, body) in scripts {
        for c in conns.iter_mut() {
            match c.command(&[b"SCRIPT", b"LOAD", body.as_bytes()], TIMEOUT).await {
                Ok(Value::Bulk(sha)) => {
                    shas.insert(name.clone(), String::from_utf8_lossy(&sha).into_owned());
                }
                Ok(Value::Error(e)) => return Err(format!("custom workload `{workload}`: script `{name}` does not load: {e}")),
                Ok(other) => return Err(format!("custom workload `{workload}`: SCRIPT LOAD of `{name}` answered {other:?}")),
                Err(e) => return Err(format!("custom workload `{workload}`: SCRIPT LOAD of `{name}`: {e}")),
            }
        }
    }
    Ok(shas)
}

/// The wire positions of `argv`'s keys, as COMMAND GETKEYS says. An argument equal to a key is a
/// key when it is the only one with that text; otherwise the server is asked again with that
/// argument made unique.
async fn locate_keys(c: &mut Conn, argv: &[Vec<u8>]) -> Result<KeyPositions, String> {
    let keys = match getkeys(c, argv).await? {
        None => return Ok(Vec::new()),
        Some(k) => k,
    };
    let mut positions = Vec::new();
    for (p, a) in argv.iter().enumerate().skip(1) {
        if !keys.contains(a) {
            continue;
        }
        if argv.iter().skip(1).filter(|x| *x == a).count() == 1 {
            positions.push(p);
            continue;
        }
        let mut probe = argv.to_vec();
        probe[p].extend_from_slice(b"\x00redis-test-probe");
        if getkeys(c, &probe).await?.is_some_and(|k| k.contains(&probe[p])) {
            positions.push(p);
        }
    }
    if positions.is_empty() || keys.iter().any(|k| !argv.iter().skip(1).any(|a| a == k)) {
        return Err("the server names keys that are not arguments of the command; name them with `keys: [..]`".into());
    }
    Ok(positions)
}

/// COMMAND GETKEYS: the keys, or `None` for a command without keys.
async fn getkeys(c: &mut Conn, argv: &[Vec<u8>]) -> Result<Option<Vec<Vec<u8>>>, String> {
    let mut args: Vec<&[u8]> = vec![b"COMMAND", b"GETKEYS"];
    args.extend(argv.iter().map(Vec::as_slice));
    match c.command(&args, TIMEOUT).await.map_err(|e| e.to_string())? {
        Value::Array(items) => Ok(Some(items.iter().filter_map(|v| v.as_bytes().map(<[u8]>::to_vec)).collect())),
        Value::Error(e) if e.contains("no key arguments") => Ok(None),
        Value::Error(e) if e.contains("Invalid command") => Err("the server does not know this command".into()),
        Value::Error(e) => Err(format!("the server cannot locate its keys ({e}); name them with `keys: [..]`")),
        other => Err(format!("COMMAND GETKEYS answered {other:?}")),
    }
}

/// Whether the server flags the command `write` (COMMAND INFO).
async fn writes(c: &mut Conn, name: &[u8]) -> Result<bool, String> {
    let reply = c.command(&[b"COMMAND", b"INFO", name], TIMEOUT).await.map_err(|e| e.to_string())?;
    let Value::Array(infos) = reply else { return Ok(false) };
    let Some(Value::Array(info)) = infos.first() else { return Ok(false) };
    let flags = match info.get(2) {
        Some(Value::Array(f)) => f,
        _ => return Ok(false),
    };
    Ok(flags.iter().any(|f| f.as_bytes().is_some_and(|b| b.eq_ignore_ascii_case(b"write"))))
}

/// On a cluster every key of a round trip must share a slot (a round trip goes to one node):
/// rendered [`SLOT_SAMPLES`] times, a round trip whose keys fall apart is refused.
fn check_slots(w: &Workload, commands: &crate::scenario::model::CustomCommands, positions: &[KeyPositions], rng: &mut crate::keys::Rng) -> Result<(), String> {
    for rt in w.sample_round_trips(rng, SLOT_SAMPLES) {
        let mut first: Option<(u16, usize, Vec<u8>)> = None;
        for (i, cmd) in rt.commands().iter().enumerate().filter(|(_, c)| c.command == crate::command::Command::Custom) {
            let args = rt.args(i);
            let t = cmd.op as usize;
            for p in positions.get(t).into_iter().flatten() {
                let Some(key) = args.get(*p) else { continue };
                let slot = crate::slots::slot(key);
                match &first {
                    None => first = Some((slot, t, key.to_vec())),
                    Some((s, other, k)) if *s != slot => {
                        let at = &commands.templates[t].at;
                        let why = if *other == t {
                            format!("its keys `{}` and `{}` fall in slots {s} and {slot}", show(k), show(key))
                        } else {
                            format!(
                                "its key `{}` (slot {slot}) and `{}` (slot {s}, {}) go in one round trip",
                                show(key),
                                show(k),
                                commands.templates[*other].at
                            )
                        };
                        return Err(format!(
                            "{at}: on a cluster the keys of a round trip must share a slot, and {why}; put `{{tag}}` in each key (`cart:{{tag}}`, `hits:{{tag}}`) to keep them together"
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
    }
    Ok(())
}

fn show(b: &[u8]) -> String {
    crate::units::escape_control(&String::from_utf8_lossy(b))
}
