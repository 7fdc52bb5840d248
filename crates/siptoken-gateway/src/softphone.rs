//! The demo softphone's files besides the page itself (`/`, `demo.html`): its script
//! (`/phone.js`), the browser SDK it is written on (`/siptoken-phone.js`: the very file of the npm
//! package `siptoken-phone`, `bindings/browser/src/`), and `/config.json`, the page's settings
//! from the gateway configuration (`screen_pop_url`). All embedded in the binary.

use std::sync::Arc;

use axum::extract::State as AxState;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

use super::State;

/// The softphone's script (an ES module importing `./siptoken-phone.js`).
pub const PHONE_JS: &str = include_str!("phone.js");

/// The browser SDK, as published in the npm package `siptoken-phone`.
pub const SDK_JS: &str = include_str!("../../../bindings/browser/src/siptoken-phone.js");

/// `GET /config.json`: what the page takes from the gateway configuration.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PageConfig<'a> {
    /// `screen_pop_url`: the client-card link shown for an incoming call (`{from}`, `{name}`
    /// filled in by the page), or `null`.
    pub screen_pop_url: Option<&'a str>,
}

/// The routes of the softphone's files (the page itself is `/`, in `http`).
pub fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/phone.js", get(|| async { javascript(PHONE_JS) }))
        .route("/siptoken-phone.js", get(|| async { javascript(SDK_JS) }))
        .route("/config.json", get(config))
}

fn javascript(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn config(AxState(state): AxState<Arc<State>>) -> Response {
    let page = PageConfig {
        screen_pop_url: state.config.screen_pop_url.as_deref(),
    };
    let body = serde_json::to_string(&page).unwrap_or_else(|_| "{}".to_owned());
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_config_is_camel_case_json() {
        let c = PageConfig {
            screen_pop_url: Some("https://crm.example.org/clients?phone={from}"),
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"screenPopUrl":"https://crm.example.org/clients?phone={from}"}"#
        );
        let none = PageConfig {
            screen_pop_url: None,
        };
        assert_eq!(
            serde_json::to_string(&none).unwrap(),
            r#"{"screenPopUrl":null}"#
        );
    }

    #[test]
    fn the_script_imports_the_sdk_the_gateway_serves() {
        assert!(PHONE_JS.contains("from './siptoken-phone.js'"));
        assert!(SDK_JS.contains("export class Phone extends"));
        // The page loads the script as a module.
        assert!(super::super::http::DEMO_PAGE.contains(r#"<script type="module" src="phone.js">"#));
    }
}
