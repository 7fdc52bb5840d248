//! What the CLI test files share.

/// The account every issuing test names: app CRM, login crm1 at sip.example.org.
pub const ACCOUNT: [&str; 6] = [
    "--app",
    "CRM",
    "--login",
    "crm1",
    "--domain",
    "sip.example.org",
];
