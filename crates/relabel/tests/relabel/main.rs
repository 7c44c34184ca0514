//! Relabeling checked three ways: each action on the cases Prometheus' own tests cover,
//! properties over any configuration and any label set, and the same results as the real
//! Prometheus on a configuration that uses every action, and the same refusals as promtool.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod actions;
mod prometheus;
mod promtool;
mod properties;
