//! Child processes and what they cost: a process-group guard that kills on drop, CPU seconds from
//! `/proc/PID/stat`, load average, percentiles. Shared by the load tools (`#[path]` module).
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Fields of `/proc/PID/stat` after the command name (the first is the state, field 3).
pub fn stat_fields(pid: &str) -> Vec<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    rest.split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect()
}

/// Clock ticks per second in `/proc/PID/stat` (USER_HZ, 100 on Linux).
pub const TICKS: f64 = 100.0;

/// Seconds of user plus system time in stat fields `user` and `user + 1` (as read by
/// [`stat_fields`]: 10 for the process itself, 12 for its waited-for children).
pub fn user_plus_system(f: &[u64], user: usize) -> f64 {
    (f.get(user).copied().unwrap_or(0) + f.get(user + 1).copied().unwrap_or(0)) as f64 / TICKS
}

/// CPU seconds (user + system) used so far by process `pid`.
pub fn cpu_secs(pid: u32) -> f64 {
    user_plus_system(&stat_fields(&pid.to_string()), 10)
}

/// CPU seconds used so far by every process in process group `group` (Kamailio forks workers).
pub fn group_cpu_secs(group: u32) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        .map(|pid| stat_fields(&pid))
        .filter(|f| f.get(1).copied() == Some(group as u64))
        .map(|f| user_plus_system(&f, 10))
        .sum()
}

/// CPU seconds used by this process's children that have been waited for (sipp).
pub fn children_cpu_secs() -> f64 {
    user_plus_system(&stat_fields("self"), 12)
}

/// Spawns `command` in a process group of its own (so [`Proc`] can kill all it forks), stdout
/// and stderr to the file `log`; panics with `what` (what is missing) when it cannot start.
pub fn spawn_logged(command: &mut Command, log: &Path, what: &str) -> Child {
    let log = std::fs::File::create(log).unwrap();
    command
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect(what)
}

/// Runs a load tool's `run` on a multi-threaded runtime and exits with its verdict (0 when it
/// returns true). On SIGTERM or SIGINT `run` is dropped, which kills its children ([`Proc`]),
/// and the tool exits 1.
pub fn exit_with_verdict(name: &str, run: impl std::future::Future<Output = bool>) -> ! {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ok = runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).unwrap();
        let mut int = signal(SignalKind::interrupt()).unwrap();
        tokio::select! {
            ok = run => ok,
            _ = term.recv() => { eprintln!("{name}: terminated"); false }
            _ = int.recv() => { eprintln!("{name}: interrupted"); false }
        }
    });
    std::process::exit(if ok { 0 } else { 1 });
}

/// A child in its own process group; the whole group is killed on drop.
pub struct Proc(pub Child);

impl Proc {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.wait();
    }
}

/// CPU seconds (user + system) used so far by thread `tid` of this process.
pub fn thread_cpu_secs(tid: u32) -> f64 {
    user_plus_system(&stat_fields(&format!("self/task/{tid}")), 10)
}

/// The calling thread's id (from `/proc/thread-self`, a link to `PID/task/TID`).
pub fn current_tid() -> u32 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `p` quantile (0..=1) of `sorted`, in milliseconds (NaN when empty).
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}
