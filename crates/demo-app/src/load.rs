//! The built-in load generator: a steady request rate spread over a few concurrent workers,
//! with a path mix that includes failures, so the dashboards have something to show.

use std::time::Duration;
use web::Client;

/// Deadline of each generated request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The application's answers are small JSON documents; the body is read only so the
/// connection can be reused.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The paths requested, with their weights.
pub const MIX: [(&str, f64); 6] = [
    ("/work", 0.55),
    ("/api/data", 0.2),
    ("/health", 0.1),
    ("/external", 0.05),
    ("/error", 0.05),
    ("/no-such-page", 0.05),
];

/// How much load to generate and against what.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Requests per second in total; 0 switches the generator off.
    pub requests_per_second: f64,
    /// Workers sending requests in parallel.
    pub concurrency: usize,
    /// Base URL requested (the application's own address by default).
    pub target: String,
}

/// Runs the generator until the task is dropped.
pub async fn generate(config: LoadConfig) {
    if config.requests_per_second <= 0.0 || config.concurrency == 0 {
        return;
    }
    let client = Client::new(REQUEST_TIMEOUT).with_max_body_bytes(MAX_BODY_BYTES);
    let per_worker =
        Duration::from_secs_f64(config.concurrency as f64 / config.requests_per_second);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..config.concurrency {
        let (client, target) = (client.clone(), config.target.clone());
        workers.spawn(async move {
            let mut tick = tokio::time::interval(per_worker);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let url = format!("{target}{}", pick_path());
                match client.get(&url).send().await {
                    Ok(_) => {}
                    // A target that is not a URL will never be one: stop instead of logging
                    // the same mistake forever.
                    Err(web::ClientError::InvalidUrl { .. }) => return,
                    Err(error) => tracing::debug!(%error, "load generator request failed"),
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
}

fn pick_path() -> &'static str {
    let mut draw = crate::work::unit();
    for (path, weight) in MIX {
        if draw < weight {
            return path;
        }
        draw -= weight;
    }
    MIX[0].0
}
