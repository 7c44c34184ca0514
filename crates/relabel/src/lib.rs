//! Prometheus relabeling: `relabel_config` read from YAML and checked as Prometheus checks it,
//! and applied to label sets with the results Prometheus' `model/relabel` gives, regexes with
//! Go's meaning included.
//!
//! ```
//! use relabel::{Labels, parse_relabel_configs, process};
//! let configs = parse_relabel_configs(
//!     "- source_labels: [__meta_ecs_cluster]\n  target_label: cluster\n",
//! )
//! .unwrap();
//! let mut labels = Labels::from_pairs([("__meta_ecs_cluster", "prod")]);
//! assert!(process(&mut labels, &configs));
//! assert_eq!(labels.get("cluster"), Some("prod"));
//! ```

mod apply;
mod config;
mod error;
mod labels;
mod pattern;

pub use apply::{hash_mod, process};
pub use config::{Action, RelabelConfig, parse_relabel_configs};
pub use error::RelabelError;
pub use labels::Labels;
pub(crate) use pattern::Pattern;
