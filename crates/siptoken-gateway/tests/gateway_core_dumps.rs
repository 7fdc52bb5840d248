//! The gateway holds every live SIP password and the key ring: it must never leave them in a
//! core file, nor let another process of its user read its memory (issue 14, item 10). The
//! binary makes itself non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`) as it starts.
//!
//! How a test sees that from outside: the kernel makes the `/proc/PID` files of a
//! non-dumpable process owned by root (proc(5)), where those of a dumpable one are owned by the
//! process's user. So the gateway must run as a user other than root: as `nobody` when the test
//! runs as root (which may change uids), as the test's own user otherwise. A control process
//! (`sleep`) started the same way shows that the check can tell the two apart.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `nobody` on Debian.
const NOBODY: u32 = 65534;

/// Kills the child when dropped (a failed assertion must not leave it running).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The user to run the processes as, and a command builder that runs them as that user.
fn as_unprivileged(program: &str) -> (u32, Command) {
    let me = std::fs::metadata("/proc/self").unwrap().uid();
    let mut cmd = Command::new(program);
    if me == 0 {
        // std drops the supplementary groups too when a root parent sets the uid.
        cmd.uid(NOBODY).gid(NOBODY);
        (NOBODY, cmd)
    } else {
        (me, cmd)
    }
}

/// The owner of `/proc/PID/environ` (the process's memory is as readable as this file).
fn proc_owner(pid: u32) -> u32 {
    std::fs::metadata(format!("/proc/{pid}/environ"))
        .unwrap()
        .uid()
}

#[test]
fn the_gateway_process_is_not_dumpable() {
    let dir = tempfile::tempdir().unwrap();
    // Readable by the unprivileged user (the gateway warns about the mode; irrelevant here).
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let keys = dir.path().join("keys.conf");
    std::fs::write(
        &keys,
        "CRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2\n",
    )
    .unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();

    // Control: an ordinary process of that user is dumpable, its /proc files are its own.
    let (user, mut sleep) = as_unprivileged("sleep");
    let control = Running(sleep.arg("30").spawn().expect("sleep runs"));
    assert_eq!(proc_owner(control.0.id()), user, "the control is dumpable");
    assert_ne!(user, 0);

    let (_, mut gateway) = as_unprivileged(env!("CARGO_BIN_EXE_siptoken-gateway"));
    let mut gw = Running(
        gateway
            .arg("--keys")
            .arg(&keys)
            .args(["--listen", "127.0.0.1:0"])
            .env("SIPTOKEN_GATEWAY_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the gateway starts"),
    );
    // Once it prints its start-up line it has long passed the prctl call.
    let stdout = gw.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the gateway prints its start-up line within 20 s");
    assert!(
        line.starts_with("siptoken-gateway listening on"),
        "{line:?}"
    );
    assert_eq!(
        proc_owner(gw.0.id()),
        0,
        "the gateway (uid {user}) is dumpable: its /proc files are not root's"
    );
}
