//! `ecs-prom demo-app`: the seeds' instrumented web application. It serves `/work`,
//! `/health`, `/api/data`, `/external`, `/error` and `/metrics`, counts and times every request,
//! can load itself with a built-in generator, and sends OpenTelemetry traces over OTLP/HTTP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

pub mod load;
pub mod metrics;
pub mod otlp;
pub mod server;
mod work;

pub use load::LoadConfig;
pub use otlp::OtlpConfig;
pub use server::{Config, run};
