//! `siptoken-gateway`: the WebSocket-to-SIP gateway. The logic lives in `siptoken::gateway`.

use std::process::ExitCode;

use clap::Parser;
use siptoken::KeyRing;
use siptoken_gateway::cli::Cli;

fn main() -> ExitCode {
    // Before anything secret is read: the key ring, then every live SIP password.
    if let Err(e) = disable_core_dumps() {
        eprintln!(
            "siptoken-gateway: warning: cannot make the process non-dumpable ({e}): a core \
             dump could hold the key ring and SIP passwords; set `ulimit -c 0` (LimitCORE=0)"
        );
    }
    let cli = Cli::parse();
    let filter = match tracing_subscriber::EnvFilter::try_new(&cli.log) {
        // The WebSocket library logs whole message payloads (tokens) at trace level: never let
        // it, whatever the filter asks for. Only a filter that enables trace somewhere needs the
        // cap (added to an `info` or `warn` filter it would raise the library to debug).
        Ok(f) if f.max_level_hint() == Some(tracing_subscriber::filter::LevelFilter::TRACE) => f
            .add_directive("tungstenite=debug".parse().expect("valid directive"))
            .add_directive("tokio_tungstenite=debug".parse().expect("valid directive")),
        Ok(f) => f,
        Err(e) => {
            eprintln!("siptoken-gateway: bad --log filter {:?}: {e}", cli.log);
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let config = match cli.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("siptoken-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = siptoken_gateway::check_tls(&config) {
        eprintln!("siptoken-gateway: {e}");
        return ExitCode::from(2);
    }
    let keys = config.keys.clone().expect("validated");
    if let Some(w) = siptoken::permission_warning(&keys) {
        eprintln!("siptoken-gateway: warning: {w}");
    }
    let ring = match KeyRing::open(&keys) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("siptoken-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check {
        println!(
            "configuration ok: {} application(s) in {}",
            ring.apps().len(),
            keys.display()
        );
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("siptoken-gateway: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("siptoken-gateway: cannot listen on {}: {e}", config.listen);
                return ExitCode::from(1);
            }
        };
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let signal = match shutdown_signal() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("siptoken-gateway: cannot watch SIGTERM and SIGINT: {e}");
                return ExitCode::from(1);
            }
        };
        // Tests and scripts read this line to learn the port when listening on port 0.
        let scheme = if config.tls_cert_file.is_some() {
            "https"
        } else {
            "http"
        };
        println!("siptoken-gateway listening on {scheme}://{addr}");
        tracing::info!(%addr, apps = ?ring.apps(), legacy = config.allow_legacy, "listening");
        match siptoken_gateway::serve(config, ring, listener, signal).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("siptoken-gateway: {e}");
                ExitCode::from(1)
            }
        }
    })
}

/// Makes this process non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`): the kernel then writes no
/// core file for it (unless `fs.suid_dumpable = 2`, and then one only root can read: the systemd
/// unit's `LimitCORE=0` covers that), and no other process of its user may attach to it or read
/// its memory (`ptrace`, `/proc/PID/mem`). The process holds the key ring and every live SIP
/// password. `tests/gateway_core_dumps.rs` checks it from outside.
#[cfg(target_os = "linux")]
fn disable_core_dumps() -> std::io::Result<()> {
    use rustix::process::{set_dumpable_behavior, DumpableBehavior};
    set_dumpable_behavior(DumpableBehavior::NotDumpable).map_err(std::io::Error::from)
}

/// Elsewhere: the process limits are the system's (`ulimit -c 0`).
#[cfg(not(target_os = "linux"))]
fn disable_core_dumps() -> std::io::Result<()> {
    Ok(())
}

/// Watches SIGTERM and SIGINT from now on (the handlers are installed by this call, so a signal
/// sent right after the start-up line is never the default, fatal one) and completes on either.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
