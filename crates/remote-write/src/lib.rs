//! The sending half of the ecs-prom agent: samples appended to a durable, bounded queue on
//! disk, read back in order and sent as Prometheus remote-write 1.0 requests (snappy-compressed
//! protobuf) to any receiver or, signed, to Amazon Managed Service for Prometheus, by shards
//! keyed by series with Prometheus' retry policy, and every outcome counted.
//!
//! ```text
//! append ──> Queue (segments + checkpoint) ──> run(): chunk ──> shards ──> Endpoint
//! ```

mod counters;
mod endpoint;
mod error;
mod labels;
mod protobuf;
mod queue;
mod record;
mod retry;
mod sender;

pub use counters::{Counters, DropReason, Stats};
pub use endpoint::{Attempt, Endpoint, USER_AGENT, amp_path_and_query};
pub use error::Error;
pub use labels::{Label, Labels, STALE_NAN_BITS, Sample, is_stale_marker, stale_marker};
pub use protobuf::{
    CONTENT_ENCODING, CONTENT_TYPE, DecodeError, REMOTE_WRITE_VERSION, TimeSeries, WriteRequest,
    compress, decompress,
};
pub use queue::{Chunk, Position, Queue, QueueConfig};
pub use record::{crc32c, decode_record_payload, encode_record};
pub use retry::{Backoff, parse_retry_after};
pub use sender::{SenderConfig, run, shard_of};
