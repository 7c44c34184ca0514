//! OpenTelemetry traces over OTLP/HTTP with JSON encoding: one server span per request,
//! batched and POSTed to `$OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces` (or
//! `$OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as is). Without an endpoint nothing is recorded.

use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use web::Client;

/// Spans waiting to be sent beyond this are dropped rather than held in memory.
const QUEUE: usize = 4096;
/// Spans per request to the collector.
const BATCH: usize = 512;
/// How often a partial batch is sent.
const FLUSH_EVERY: Duration = Duration::from_secs(2);
/// Deadline of each request to the collector.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// A collector answers an export with a small status document; more is not read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Where and as what traces are sent.
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// The full URL spans are POSTed to.
    pub traces_url: String,
    /// `service.name` of the resource.
    pub service_name: String,
}

impl OtlpConfig {
    /// Reads the standard OpenTelemetry variables through `env`; `None` when no endpoint is set.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Option<OtlpConfig> {
        let traces_url = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .filter(|url| !url.is_empty())
            .or_else(|| {
                env("OTEL_EXPORTER_OTLP_ENDPOINT")
                    .filter(|url| !url.is_empty())
                    .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
            })?;
        let service_name = env("OTEL_SERVICE_NAME")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "ecs-prom-demo-app".into());
        Some(OtlpConfig {
            traces_url,
            service_name,
        })
    }
}

/// One finished server span.
#[derive(Debug, Clone)]
pub struct Span {
    /// `GET /work` and the like.
    pub name: String,
    /// Start, nanoseconds since the Unix epoch.
    pub start_ns: u128,
    /// End, nanoseconds since the Unix epoch.
    pub end_ns: u128,
    /// The request method.
    pub method: &'static str,
    /// The (bounded) request path.
    pub path: &'static str,
    /// The response status code.
    pub status: u16,
}

/// Hands spans to the background exporter without waiting.
#[derive(Clone)]
pub struct Tracer {
    queue: mpsc::Sender<Span>,
}

impl Tracer {
    /// Starts the background exporter and returns the handle that records spans.
    pub fn start(config: OtlpConfig) -> Tracer {
        let (queue, spans) = mpsc::channel(QUEUE);
        tokio::spawn(export(config, spans));
        Tracer { queue }
    }

    /// Records a span; drops it when the queue is full (the collector is down or slow).
    pub fn record(&self, span: Span) {
        let _ = self.queue.try_send(span);
    }
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

async fn export(config: OtlpConfig, mut spans: mpsc::Receiver<Span>) {
    let client = Client::new(EXPORT_TIMEOUT).with_max_body_bytes(MAX_ANSWER_BYTES);
    let mut batch = Vec::with_capacity(BATCH);
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    loop {
        tokio::select! {
            span = spans.recv() => match span {
                Some(span) => {
                    batch.push(span);
                    if batch.len() >= BATCH {
                        send(&client, &config, std::mem::take(&mut batch)).await;
                    }
                }
                None => {
                    if !batch.is_empty() {
                        send(&client, &config, batch).await;
                    }
                    return;
                }
            },
            _ = tick.tick() => {
                if !batch.is_empty() {
                    send(&client, &config, std::mem::take(&mut batch)).await;
                }
            }
        }
    }
}

async fn send(client: &Client, config: &OtlpConfig, batch: Vec<Span>) {
    let body = traces_document(&config.service_name, &batch).to_string();
    let sent = client
        .post(&config.traces_url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) if response.status.is_success() => {
            tracing::debug!(spans = batch.len(), "traces exported");
        }
        Ok(response) => tracing::warn!(
            status = response.status.as_u16(),
            "OTLP endpoint refused traces"
        ),
        Err(error) => tracing::warn!(%error, "sending traces failed"),
    }
}

/// An OTLP `ExportTraceServiceRequest` in its JSON encoding.
pub fn traces_document(service_name: &str, spans: &[Span]) -> Value {
    let attribute = |key: &str, value: Value| json!({"key": key, "value": value});
    json!({"resourceSpans": [{
        "resource": {"attributes": [attribute("service.name", json!({"stringValue": service_name}))]},
        "scopeSpans": [{
            "scope": {"name": "ecs-prom-demo-app", "version": env!("CARGO_PKG_VERSION")},
            "spans": spans.iter().map(|span| json!({
                "traceId": crate::work::hex(32),
                "spanId": crate::work::hex(16),
                "name": span.name,
                "kind": 2,
                "startTimeUnixNano": span.start_ns.to_string(),
                "endTimeUnixNano": span.end_ns.to_string(),
                "attributes": [
                    attribute("http.request.method", json!({"stringValue": span.method})),
                    attribute("url.path", json!({"stringValue": span.path})),
                    attribute("http.response.status_code", json!({"intValue": span.status.to_string()})),
                ],
                "status": {"code": if span.status >= 500 { 2 } else { 0 }},
            })).collect::<Vec<_>>()
        }]
    }]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_variables_choose_the_endpoint() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert!(OtlpConfig::from_env(env(&[])).is_none());
        let base = OtlpConfig::from_env(env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://127.0.0.1:4318/",
        )]))
        .expect("set");
        assert_eq!(base.traces_url, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(base.service_name, "ecs-prom-demo-app");
        let explicit = OtlpConfig::from_env(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4318/custom"),
            ("OTEL_SERVICE_NAME", "shop"),
        ]))
        .expect("set");
        assert_eq!(
            (explicit.traces_url.as_str(), explicit.service_name.as_str()),
            ("http://b:4318/custom", "shop")
        );
    }

    #[test]
    fn spans_are_written_in_the_otlp_json_shape() {
        let span = Span {
            name: "GET /error".into(),
            start_ns: 1,
            end_ns: 2,
            method: "GET",
            path: "/error",
            status: 500,
        };
        let document = traces_document("svc", &[span]);
        let written = &document["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(written["traceId"].as_str().map(str::len), Some(32));
        assert_eq!(written["spanId"].as_str().map(str::len), Some(16));
        assert_eq!(written["endTimeUnixNano"], "2");
        assert_eq!(written["status"]["code"], 2);
        assert_eq!(
            document["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
            "svc"
        );
    }
}
