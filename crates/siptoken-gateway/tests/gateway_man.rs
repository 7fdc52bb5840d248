//! `man/siptoken-gateway.8` must be what the clap definitions generate.
//! Regenerate with `SIPTOKEN_UPDATE_MAN=1 cargo test --test gateway_man` and commit.

use std::path::Path;

#[test]
fn committed_gateway_man_page_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../man/siptoken-gateway.8");
    let fresh = siptoken_gateway::cli::man_page();
    if std::env::var("SIPTOKEN_UPDATE_MAN").as_deref() == Ok("1") {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "man/siptoken-gateway.8 is stale: run `SIPTOKEN_UPDATE_MAN=1 cargo test --test gateway_man` and commit"
    );
    for option in [
        "\\-\\-config",
        "\\-\\-listen",
        "\\-\\-keys",
        "\\-\\-allow\\-legacy",
        "\\-\\-sip\\-bind",
        "\\-\\-allowed\\-origin",
    ] {
        assert!(fresh.contains(option), "{option} missing from the man page");
    }
}
