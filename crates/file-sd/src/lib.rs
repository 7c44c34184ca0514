//! Prometheus' file_sd and http_sd target groups ([`TargetGroup`], rendered the same way every
//! time so equal lists give equal bytes), and files replaced atomically ([`write_atomically`],
//! [`FileOutput`]): the model and the writer discovery, the demo and the agent share.

mod group;
mod write;

pub use group::{TargetGroup, count, render, sanitize_label_name};
pub use write::{FileOutput, PUBLIC_MODE, SECRET_MODE, write_atomically};
