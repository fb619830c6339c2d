//! The schema is a user interface: the real editor tooling, driven the way editors drive it.
//! yaml-language-server (VS Code's YAML support) over stdio: completion at the top level, inside a
//! workload after `kind: list` and in a phase; diagnostics for a misspelt key, a bare-number
//! duration and documented `${VAR}` values. taplo (Even Better TOML) lints a TOML twin.
//! Both come from the npm registry into `.tools/` (scripts/install-deps).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::{repo, scratch};
use serde_json::{Value, json};

fn tool(name: &str) -> std::path::PathBuf {
    let path = repo().join(".tools/node_modules/.bin").join(name);
    assert!(path.exists(), "{} is missing: run scripts/install-deps", path.display());
    path
}

/// A language server over stdio: requests, notifications, and the messages it sends.
struct Lsp {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    next_id: i64,
    diagnostics: std::collections::HashMap<String, Vec<Value>>,
}

impl Lsp {
    fn start() -> Lsp {
        let mut child = Command::new(tool("yaml-language-server"))
            .arg("--stdio")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("yaml-language-server starts");
        let stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (tx, incoming) = channel();
        std::thread::spawn(move || {
            loop {
                let mut length = None;
                loop {
                    let mut line = String::new();
                    if out.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length:") {
                        length = v.trim().parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; length.unwrap_or(0)];
                if out.read_exact(&mut body).is_err() {
                    return;
                }
                if tx.send(serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null)).is_err() {
                    return;
                }
            }
        });
        let mut lsp = Lsp { child, stdin, incoming, next_id: 0, diagnostics: Default::default() };
        lsp.request("initialize", json!({"processId": null, "rootUri": null, "capabilities": {"textDocument": {"completion": {"completionItem": {"snippetSupport": true}}}, "workspace": {"configuration": true}}}));
        lsp.notify("initialized", json!({}));
        lsp.notify("workspace/didChangeConfiguration", json!({"settings": {"yaml": Self::settings()}}));
        lsp
    }

    fn settings() -> Value {
        json!({"validate": true, "completion": true, "hover": true, "schemaStore": {"enable": false}})
    }

    fn send(&mut self, msg: &Value) {
        let body = msg.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Handles one message from the server that is not the awaited reply.
    fn handle(&mut self, m: Value) {
        if m["method"] == "textDocument/publishDiagnostics" {
            self.diagnostics.insert(m["params"]["uri"].as_str().unwrap().to_owned(), m["params"]["diagnostics"].as_array().cloned().unwrap_or_default());
        } else if m.get("id").is_some() && m.get("method").is_some() {
            // A request from the server (configuration, registration): answer it.
            let result = if m["method"] == "workspace/configuration" {
                Value::Array(m["params"]["items"].as_array().map_or(vec![], |i| i.iter().map(|_| Self::settings()).collect()))
            } else {
                Value::Null
            };
            self.send(&json!({"jsonrpc": "2.0", "id": m["id"], "result": result}));
        }
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let m =
                self.incoming.recv_timeout(deadline.saturating_duration_since(Instant::now())).unwrap_or_else(|_| panic!("no reply to {method} within 30 s"));
            if m["id"] == id && m.get("method").is_none() {
                return m["result"].clone();
            }
            self.handle(m);
        }
    }

    /// Opens a document and waits for its diagnostics.
    fn open(&mut self, name: &str, text: &str) -> (String, Vec<Value>) {
        let uri = format!("file:///redis-test-editor-test/{name}");
        self.notify("textDocument/didOpen", json!({"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}}));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.diagnostics.contains_key(&uri) {
            let m = self.incoming.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("diagnostics within 30 s");
            self.handle(m);
        }
        let d = self.diagnostics[&uri].clone();
        (uri, d)
    }

    fn complete(&mut self, uri: &str, line: u32, character: u32) -> Vec<String> {
        let r = self.request("textDocument/completion", json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}));
        let items = r.get("items").cloned().unwrap_or(r);
        items.as_array().map_or(vec![], |i| i.iter().filter_map(|x| x["label"].as_str().map(str::to_owned)).collect())
    }
}

impl Drop for Lsp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn modeline() -> String {
    format!("# yaml-language-server: $schema=file://{}\n", repo().join("schemas/scenario.schema.json").display())
}

#[test]
fn yaml_language_server_completes_each_place_and_points_at_real_mistakes_only() {
    let mut lsp = Lsp::start();
    // Completion: top level, a list workload's own options, a phase's keys.
    let doc = format!("{}name: x\ntarget: {{url: redis://h}}\nworkloads:\n  w:\n    kind: list\n    \nphases:\n  - name: p\n    \n\n", modeline());
    let (uri, _) = lsp.open("complete.yaml", &doc);
    let top = lsp.complete(&uri, 10, 0);
    for key in ["connections", "keyspace", "faults", "thresholds", "metrics"] {
        assert!(top.contains(&key.to_owned()), "top level lacks {key}: {top:?}");
    }
    let list = lsp.complete(&uri, 6, 4);
    for key in ["max_length", "range", "commands", "weight"] {
        assert!(list.contains(&key.to_owned()), "a list workload lacks {key}: {list:?}");
    }
    for other in ["read_ratio", "depth", "channels", "members"] {
        assert!(!list.contains(&other.to_owned()), "a list workload offers another kind's {other}: {list:?}");
    }
    let phase = lsp.complete(&uri, 9, 4);
    for key in ["duration", "workers", "rate", "mix"] {
        assert!(phase.contains(&key.to_owned()), "a phase lacks {key}: {phase:?}");
    }
    assert!(phase.iter().all(|l| !l.starts_with("Raw")), "an internal type name leaks: {phase:?}");
    // An empty workload offers `kind`, not eight kinds' options at once.
    let (uri, _) = lsp.open("empty.yaml", &format!("{}name: x\nworkloads:\n  w:\n    \n", modeline()));
    let empty = lsp.complete(&uri, 4, 4);
    assert!(empty.contains(&"kind".to_owned()) && !empty.contains(&"commands".to_owned()), "{empty:?}");
    // Distributions complete their structured forms too.
    let (uri, _) = lsp.open("dist.yaml", &format!("{}name: x\nkeyspace:\n  distribution: \n", modeline()));
    let dist = lsp.complete(&uri, 3, 16);
    for d in ["uniform", "sequential", "zipf", "gaussian"] {
        assert!(dist.contains(&d.to_owned()), "distribution lacks {d}: {dist:?}");
    }

    // Diagnostics: the misspelt key and the unit-less duration, nothing for documented ${VAR}s.
    let doc = format!(
        "{}name: x\ntarget: {{url: redis://h}}\nworkloads:\n  w:\n    kind: list\n    read_ration: 2\n    weight: \"${{W:-2}}\"\n  p:\n    kind: pipeline\n    depth: \"${{D:-5}}\"\n    transaction: \"${{TX:-true}}\"\nphases:\n  - name: p\n    duration: 30\n    workers: \"${{WORKERS:-2}}\"\n  - name: q\n    duration: \"${{D:-5s}}\"\n    workers: 1\n",
        modeline()
    );
    let (_, diags) = lsp.open("diagnose.yaml", &doc);
    let messages: Vec<(u64, String)> =
        diags.iter().map(|d| (d["range"]["start"]["line"].as_u64().unwrap(), d["message"].as_str().unwrap().to_owned())).collect();
    assert!(messages.iter().any(|(l, m)| *l == 6 && m.contains("read_ration")), "the misspelt key is named on its line: {messages:?}");
    assert!(messages.iter().any(|(l, m)| *l == 14 && m.contains("duration") && m.contains("unit")), "the bare duration says what it needs: {messages:?}");
    assert_eq!(messages.len(), 2, "nothing else is flagged (interpolated values are fine): {messages:?}");
}

#[test]
fn taplo_names_the_misspelt_key_and_accepts_interpolation_in_toml() {
    let dir = scratch("editors-taplo");
    let toml = "name = \"x\"\n[target]\nurl = \"redis://h\"\n[workloads.w]\nkind = \"list\"\nread_ration = 2\nweight = \"${W:-2}\"\n[workloads.p]\nkind = \"pipeline\"\ndepth = \"${D:-5}\"\ntransaction = \"${TX:-true}\"\n[[phases]]\nname = \"p\"\nduration = \"1s\"\nworkers = 2\n";
    std::fs::write(dir.join("t.toml"), toml).unwrap();
    let schema = format!("file://{}", repo().join("schemas/scenario.schema.json").display());
    let out = Command::new(tool("taplo")).args(["lint", "--no-auto-config", "--schema", &schema, "t.toml"]).current_dir(&dir).output().expect("taplo runs");
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "the misspelt key fails the lint: {text}");
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("error:")).collect();
    assert!(!errors.is_empty() && errors.iter().all(|l| l.contains("'read_ration' was unexpected")), "every error is about the misspelt key: {errors:?}");
    assert!(!text.contains("oneOf"), "no \"matches none of the schemas\": {text}");
    // The same file without the typo lints clean, interpolated numbers and booleans included.
    std::fs::write(dir.join("t.toml"), toml.replace("read_ration = 2\n", "")).unwrap();
    let out = Command::new(tool("taplo")).args(["lint", "--no-auto-config", "--schema", &schema, "t.toml"]).current_dir(&dir).output().expect("taplo runs");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
