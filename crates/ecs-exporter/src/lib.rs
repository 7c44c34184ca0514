//! `ecs-prom exporter`: serves Prometheus metrics for ECS tasks, read from the Task
//! Metadata Endpoint v4 on every scrape.
//!
//! [`metrics`] turns the endpoint's documents into metric families, [`upstream`] reads the
//! endpoint for scrapes, [`collector`] makes one reading into
//! families (in-process, for the agent), and [`server`] serves `/metrics` and the health endpoints.

pub mod collector;
pub mod metrics;
pub mod server;
pub mod upstream;

pub use collector::Collector;
pub use metrics::{ECS_METRICS, Inputs, Metric, MetricDef, Scope, SharedInterfaces, ecs_families};
pub use server::{Config, router, run};
