//! sipp for the load tools: a scenario (kept next to this file in `sipp/`, as the tests keep
//! theirs in `tests/gateway/sipp/`) written into a run directory, sipp started there in its own
//! process group with its output in `sipp.out`, and a bounded wait for its exit. Shared by the
//! load tools (`#[path]` module).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use super::procs::{spawn_logged, Proc};

/// Registers every account of the injection file: REGISTER, 401, REGISTER with digest, 200.
pub const REGISTER: &str = include_str!("sipp/register.xml");
/// The echo callee: answers every INVITE with PCMU, waits for the BYE.
pub const ECHO_UAS: &str = include_str!("sipp/echo-uas.xml");
/// Calls the echo through the proxy with digest on the INVITE (407), hangs up.
pub const ECHO_UAC: &str = include_str!("sipp/echo-uac.xml");

/// A sipp command running `scenario` (written to `dir/file`) in `dir`, where its traces go.
pub fn command(dir: &Path, file: &str, scenario: &str) -> Command {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(file);
    std::fs::write(&path, scenario).unwrap();
    let mut sipp = Command::new("sipp");
    sipp.arg("-sf").arg(path).current_dir(dir);
    sipp
}

/// Starts `sipp` (from [`command`]) with its output in `dir/sipp.out`.
pub fn start(sipp: &mut Command, dir: &Path) -> Proc {
    Proc(spawn_logged(
        sipp,
        &dir.join("sipp.out"),
        "sipp is installed (Debian package sip-tester)",
    ))
}

/// Waits up to `within` for sipp to exit; `None` if it did not.
pub fn wait(proc: &mut Proc, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = proc.0.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
