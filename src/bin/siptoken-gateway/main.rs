//! `siptoken-gateway`: the WebSocket-to-SIP gateway. The logic lives in `siptoken::gateway`.

use std::process::ExitCode;

use clap::Parser;
use siptoken::gateway::cli::Cli;
use siptoken::KeyRing;

fn main() -> ExitCode {
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
    if let Err(e) = siptoken::gateway::check_tls(&config) {
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
        // Tests and scripts read this line to learn the port when listening on port 0.
        let scheme = if config.tls_cert_file.is_some() {
            "https"
        } else {
            "http"
        };
        println!("siptoken-gateway listening on {scheme}://{addr}");
        tracing::info!(%addr, apps = ?ring.apps(), legacy = config.allow_legacy, "listening");
        match siptoken::gateway::serve(config, ring, listener, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("siptoken-gateway: {e}");
                ExitCode::from(1)
            }
        }
    })
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot watch SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
