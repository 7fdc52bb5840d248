//! Starting the gateway binary, shared by the gateway tests (`tests/gateway/harness.rs`) and the
//! load tools (`examples/load_support/gateway.rs`): the key ring in `keys.conf` (mode 0600, as
//! the gateway demands of a key file), the config in `gateway.toml`, stderr into `gateway.log`,
//! stdout piped (its first line says where the gateway listens), in a process group of its own.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Writes `keys` (`keys.conf`) and `config` (`gateway.toml`, which names `keys.conf`) into
/// `dir`, and returns the command that runs `binary` on them, its stderr going to
/// `dir/gateway.log`; the caller adds its arguments and environment (`SIPTOKEN_GATEWAY_LOG`)
/// and spawns it.
pub fn command(binary: &Path, dir: &Path, keys: &str, config: &str) -> Command {
    let keys_path = dir.join("keys.conf");
    std::fs::write(&keys_path, keys).unwrap();
    std::fs::set_permissions(
        &keys_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let config_path = dir.join("gateway.toml");
    std::fs::write(&config_path, config).unwrap();
    let log = std::fs::File::create(dir.join("gateway.log")).unwrap();
    let mut command = Command::new(binary);
    command
        .arg("--config")
        .arg(&config_path)
        .stdout(Stdio::piped())
        .stderr(log)
        .process_group(0);
    command
}

/// The address in the gateway's first stdout line, `siptoken-gateway listening on
/// http://ADDR` (or `https://`); `None` when the line is not that.
pub fn listening_address(line: &str) -> Option<&str> {
    let rest = line.trim().strip_prefix("siptoken-gateway listening on ")?;
    rest.strip_prefix("http://")
        .or_else(|| rest.strip_prefix("https://"))
}
