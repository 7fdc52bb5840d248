//! Kamailio as registrar (and proxy) for the load tools: the integration tests' config
//! (`tests/gateway/kamailio.cfg`) with its users loaded from a db_text htable file, N UDP
//! children, jsonrpcs over a FIFO for `ul.dump`, and static call routes. Shared by the load tools
//! (`#[path]` module).
#![allow(dead_code)]

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::procs::{spawn_logged, Proc};
use crate::loopback::free_port;

/// The SIP domain of every account.
pub const DOMAIN: &str = "sip.test";

/// What Kamailio is started with.
pub struct KamailioSpec {
    /// (user, password) of every account.
    pub users: Vec<(String, String)>,
    /// Static call routes (user, SIP URI) for users not found in the location table.
    pub routes: Vec<(String, String)>,
    /// UDP worker processes.
    pub children: u32,
    /// Shared memory, MiB.
    pub shm_mb: u32,
}

pub struct Kamailio {
    dir: PathBuf,
    pub port: u16,
    /// Kept for its drop (kills Kamailio).
    proc: Proc,
}

impl Kamailio {
    /// Kamailio's main process, leader of its process group.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Starts Kamailio with the test config, its users loaded from a db_text htable file.
    pub fn start(dir: &Path, o: &KamailioSpec) -> Kamailio {
        let db = dir.join("db");
        std::fs::create_dir_all(&db).unwrap();
        let mut users = String::from(
            "key_name(string) key_type(int) value_type(int) key_value(string) expires(int)\n",
        );
        for (user, password) in &o.users {
            users.push_str(&format!("{user}:0:0:{password}:0\n"));
        }
        let routes: String = o
            .routes
            .iter()
            .map(|(u, uri)| format!("\t$sht(routes=>{u}) = \"{uri}\";\n"))
            .collect();
        std::fs::write(db.join("users"), users).unwrap();
        std::fs::write(
            db.join("version"),
            "table_name(string) table_version(int)\nusers:2\n",
        )
        .unwrap();
        let base = include_str!("../../tests/gateway/kamailio.cfg");
        for (from, _) in [
            ("children=2\n", ()),
            ("loadmodule \"ctl.so\"\n", ()),
            ("loadmodule \"htable.so\"\n", ()),
            ("modparam(\"htable\", \"htable\", \"users=>size=4;\")\n", ()),
        ] {
            assert!(base.contains(from), "kamailio.cfg changed: no {from:?}");
        }
        for _attempt in 0..5 {
            let port = free_port();
            let cfg = base
                .replace("children=2\n", &format!("children={}\n", o.children))
                .replace(
                    "loadmodule \"htable.so\"\n",
                    "loadmodule \"db_text.so\"\nloadmodule \"htable.so\"\n",
                )
                .replace(
                    "modparam(\"htable\", \"htable\", \"users=>size=4;\")\n",
                    &format!(
                        "modparam(\"htable\", \"db_url\", \"text://{}\")\n\
                         modparam(\"htable\", \"htable\", \"users=>size=16;dbtable=users;\")\n",
                        db.display()
                    ),
                )
                // The bindings are read through jsonrpcs over a FIFO: kamcmd refuses replies
                // over 64 KiB, a dump of N bindings is about N * 900 bytes.
                .replace(
                    "loadmodule \"ctl.so\"\n",
                    &format!(
                        "loadmodule \"ctl.so\"\nloadmodule \"jsonrpcs.so\"\n\
                         modparam(\"jsonrpcs\", \"transport\", 2)\n\
                         modparam(\"jsonrpcs\", \"fifo_name\", \"{0}/rpc.fifo\")\n\
                         modparam(\"jsonrpcs\", \"fifo_reply_dir\", \"{0}/\")\n",
                        dir.display()
                    ),
                )
                .replace("@PORT@", &port.to_string())
                .replace("@DIR@", dir.to_str().unwrap())
                .replace("@DOMAIN@", DOMAIN)
                .replace("@MIN_EXPIRES@", "1")
                .replace("@NONCE_EXPIRE@", "300")
                .replace("@TCP_LIFETIME@", "120")
                .replace("@ALGORITHM@", "MD5")
                .replace("@PING_INTERVAL@", "15")
                .replace(
                    "@USERS@",
                    "\txlog(\"L_INFO\", \"users come from the db_text table\\n\");",
                )
                .replace("@ROUTES@", &routes);
            let cfg: String = cfg
                .lines()
                .filter(|l| !l.contains("[::1]"))
                .map(|l| format!("{l}\n"))
                .collect();
            let cfg_path = dir.join("kamailio.cfg");
            std::fs::write(&cfg_path, cfg).unwrap();
            let child = spawn_logged(
                Command::new("kamailio")
                    .arg("-f")
                    .arg(&cfg_path)
                    .arg("-w")
                    .arg(dir)
                    .arg("-Y")
                    .arg(dir)
                    .arg("-P")
                    .arg(dir.join("kamailio.pid"))
                    .args(["-m", &o.shm_mb.to_string(), "-M", "160", "-E", "-DD"]),
                &dir.join("kamailio.log"),
                "kamailio is installed (Debian package kamailio)",
            );
            let mut proc = Proc(child);
            let k = Kamailio {
                dir: dir.to_owned(),
                port,
                proc: Proc(Command::new("true").spawn().unwrap()),
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = proc.0.try_wait() {
                    break;
                }
                if k.kamcmd(&["core.version"]).is_some() {
                    return Kamailio { proc, ..k };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(proc);
            eprintln!(
                "kamailio did not start on port {port}:\n{}",
                std::fs::read_to_string(dir.join("kamailio.log")).unwrap_or_default()
            );
        }
        panic!("kamailio did not start");
    }

    pub fn kamcmd(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("kamcmd")
            .arg("-s")
            .arg(format!("unix:{}/ctl.sock", self.dir.display()))
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A JSON-RPC command through the jsonrpcs FIFO (bounded by a timeout).
    pub fn rpc(&self, method: &str) -> Result<Value, String> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let name = format!("reply{}", SEQ.fetch_add(1, Ordering::Relaxed));
        let reply = self.dir.join(&name);
        let made = Command::new("mkfifo").arg(&reply).status();
        if !made.is_ok_and(|s| s.success()) {
            return Err("mkfifo failed".into());
        }
        let request = json!({"jsonrpc": "2.0", "method": method, "reply_name": name, "id": 1});
        let fifo = self.dir.join("rpc.fifo");
        let (tx, rx) = std::sync::mpsc::channel();
        let reply_path = reply.clone();
        std::thread::spawn(move || {
            let result = (|| -> std::io::Result<String> {
                let mut w = std::fs::OpenOptions::new().write(true).open(&fifo)?;
                writeln!(w, "{request}")?;
                drop(w);
                std::fs::read_to_string(&reply_path)
            })();
            let _ = tx.send(result);
        });
        let out = rx.recv_timeout(Duration::from_secs(60));
        let _ = std::fs::remove_file(&reply);
        let text = out
            .map_err(|_| format!("{method}: no answer within 60 s"))?
            .map_err(|e| format!("{method}: {e}"))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{method}: {e}"))?;
        if v.get("error").is_some() {
            return Err(format!("{method}: {}", v["error"]));
        }
        Ok(v["result"].clone())
    }

    /// AoRs (user parts) with at least one unexpired binding, whose user starts with `prefix`
    /// (`ul.dump`; expired bindings stay in it until usrloc's timer removes them).
    pub fn registered(&self, prefix: &str) -> HashSet<String> {
        fn walk(v: &Value, prefix: &str, aor: Option<&str>, out: &mut HashSet<String>) {
            match v {
                Value::Object(m) => {
                    let here = m.get("AoR").and_then(Value::as_str);
                    let aor = here.map(|a| a.split('@').next().unwrap_or("")).or(aor);
                    if let (Some(a), Some(e)) = (aor, m.get("Expires")) {
                        let live = e.as_i64().is_some_and(|s| s > 0) || e == "permanent";
                        if live && a.starts_with(prefix) {
                            out.insert(a.to_owned());
                        }
                    }
                    for x in m.values() {
                        walk(x, prefix, aor, out);
                    }
                }
                Value::Array(a) => {
                    for x in a {
                        walk(x, prefix, aor, out);
                    }
                }
                _ => {}
            }
        }
        let dump = self.rpc("ul.dump").expect("ul.dump through jsonrpcs");
        let mut out = HashSet::new();
        walk(&dump, prefix, None, &mut out);
        out
    }

    /// Waits (bounded) until exactly `n` of the `prefix` accounts are registered.
    pub fn wait_registered(&self, prefix: &str, n: usize, within: Duration) -> HashSet<String> {
        let deadline = Instant::now() + within;
        loop {
            let r = self.registered(prefix);
            if r.len() == n || Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}
