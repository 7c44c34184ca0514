//! The durable, bounded queue between the scrapers and the sender: records appended to
//! numbered segment files under one directory, read back in order, and segments removed once
//! every sample in them was sent or given up.
//!
//! Appends reach the operating system at once and are flushed to the disk at most once per
//! `sync_interval`, so a crash of the machine loses at most about that much; a crash of the
//! process loses nothing. With `fsync` off nothing is flushed: the operating system writes when
//! it will, and only a crash of the process is survived, which is all a queue on a volume that
//! dies with its machine (an ECS task's) can hope for anyway. The acknowledged position is kept in a small checkpoint file,
//! replaced atomically, and the queue resumes from it when opened again: samples sent after
//! the last checkpoint are sent again (at least once, exactly once after a clean close). A torn
//! record at the end of the newest segment is cut off at the last good record. When the
//! segments outgrow `max_bytes`, the oldest are removed and their unsent samples counted as
//! dropped; memory does not grow with the backlog, which is read back a chunk at a time.

use crate::counters::{Counters, DropReason};
use crate::error::Error;
use crate::labels::Sample;
use crate::record::{HEADER_LEN, Header, MAX_PAYLOAD_LEN, decode_record_payload, encode_record};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The first bytes of every segment file: the format and its version.
const SEGMENT_MAGIC: &[u8; 8] = b"ecsprq\x00\x01";
/// Offset of a segment's first record.
const FIRST_RECORD: u64 = SEGMENT_MAGIC.len() as u64;
const CHECKPOINT_FILE: &str = "checkpoint";
const SEGMENT_SUFFIX: &str = ".seg";

/// Where the queue is and how large it may grow.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// The directory of the segments and the checkpoint (created when missing).
    pub directory: PathBuf,
    /// Largest total size of the segment files; the oldest are removed beyond it.
    pub max_bytes: u64,
    /// Size at which a segment is closed and the next one begun (at most a quarter of
    /// `max_bytes` is used, so removing the oldest always frees room).
    pub segment_bytes: u64,
    /// Longest time an append waits to be flushed to the disk, and between checkpoints.
    pub sync_interval: Duration,
    /// Whether appends, new segments and the checkpoint are flushed to the disk (`fsync`).
    pub fsync: bool,
    /// Samples per record at most (larger appends are split).
    pub max_samples_per_record: usize,
}

impl QueueConfig {
    /// The defaults under `directory`: 1 GiB in segments of 16 MiB, flushed each second.
    pub fn new(directory: impl Into<PathBuf>) -> QueueConfig {
        QueueConfig {
            directory: directory.into(),
            max_bytes: 1024 * 1024 * 1024,
            segment_bytes: 16 * 1024 * 1024,
            sync_interval: Duration::from_secs(1),
            fsync: true,
            max_samples_per_record: 2000,
        }
    }

    fn effective_segment_bytes(&self) -> u64 {
        self.segment_bytes.min(self.max_bytes / 4).max(4096)
    }
}

/// A place in the queue: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    /// The segment's number.
    pub segment: u64,
    /// The byte offset of the next record.
    pub offset: u64,
}

/// Samples read from the queue, to be acknowledged with [`Queue::ack`] once they are sent.
#[derive(Debug)]
pub struct Chunk {
    /// The samples, in the order they were appended.
    pub samples: Vec<Sample>,
    /// Where the queue continues after them.
    pub end: Position,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    bytes: u64,
}

struct State {
    /// Oldest first; the last one is written to.
    segments: VecDeque<Segment>,
    writer: File,
    dirty: bool,
    last_sync: Instant,
    read: Position,
    reader: Option<(u64, BufReader<File>, u64)>,
    acked: Position,
    checkpointed: Position,
    last_checkpoint: Instant,
    /// Samples after the read position.
    unread: u64,
    /// Samples read and not yet acknowledged.
    in_flight: u64,
    /// The records appended last, as appended: the sender, when it keeps up, reads them from
    /// here rather than decoding them from the disk again.
    recent: VecDeque<RecentRecord>,
    /// Samples in `recent`.
    recent_samples: usize,
}

/// A record kept in memory after it was written.
struct RecentRecord {
    start: Position,
    next: u64,
    samples: Vec<Sample>,
}

/// Most samples kept in memory for the sender (their labels are shared with the scrapes', so
/// this costs about 40 bytes a sample); older records are read from the disk. A sender that
/// keeps up reads every few hundred samples, far below this.
const MAX_RECENT_SAMPLES: usize = 20_000;

/// The durable queue. Shared between the appenders and the sender through an `Arc`.
pub struct Queue {
    config: QueueConfig,
    /// `config.max_bytes`, or what [`Queue::set_max_bytes`] set since.
    max_bytes: std::sync::atomic::AtomicU64,
    counters: Arc<Counters>,
    state: Mutex<State>,
    appended: tokio::sync::Notify,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn segment_path(directory: &Path, id: u64) -> PathBuf {
    directory.join(format!("{id:020}{SEGMENT_SUFFIX}"))
}

fn segment_error(operation: &'static str, path: PathBuf) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Segment {
        operation,
        path,
        source,
    }
}

/// What a walk over a segment's records found.
struct Walk {
    samples: u64,
    /// The end of the last whole (and, when verified, intact) record.
    end: u64,
}

/// Walks the records of `path` from `from` to at most `limit`, reading only headers unless
/// `verify`, when each payload's checksum is checked too.
fn walk(path: &Path, from: u64, limit: u64, verify: bool) -> std::io::Result<Walk> {
    let mut file = BufReader::new(File::open(path)?);
    file.seek(SeekFrom::Start(from))?;
    let mut walk = Walk {
        samples: 0,
        end: from,
    };
    let mut header = [0u8; HEADER_LEN];
    let mut payload = Vec::new();
    while walk.end + HEADER_LEN as u64 <= limit {
        if file.read_exact(&mut header).is_err() {
            break;
        }
        let parsed = Header::parse(&header);
        let next = walk.end + HEADER_LEN as u64 + u64::from(parsed.payload_len);
        if parsed.payload_len > MAX_PAYLOAD_LEN || next > limit {
            break;
        }
        if verify {
            payload.resize(parsed.payload_len as usize, 0);
            if file.read_exact(&mut payload).is_err() || !parsed.matches(&payload) {
                break;
            }
        } else {
            file.seek_relative(i64::from(parsed.payload_len))?;
        }
        walk.samples += u64::from(parsed.count);
        walk.end = next;
    }
    Ok(walk)
}

fn read_checkpoint(path: &Path) -> Option<Position> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut words = text.split_whitespace();
    let segment = words.next()?.parse().ok()?;
    let offset = words.next()?.parse().ok()?;
    Some(Position { segment, offset })
}

fn sync_directory(directory: &Path) -> std::io::Result<()> {
    File::open(directory)?.sync_all()
}

impl Queue {
    /// Opens the queue under `config.directory`, resuming from its checkpoint: a torn record
    /// at the end is cut off, segments already acknowledged are removed.
    pub fn open(config: QueueConfig, counters: Arc<Counters>) -> Result<Queue, Error> {
        let directory = config.directory.clone();
        let open_error = |source| Error::OpenDirectory {
            path: directory.clone(),
            source,
        };
        std::fs::create_dir_all(&directory).map_err(open_error)?;
        let mut ids: Vec<u64> = std::fs::read_dir(&directory)
            .map_err(open_error)?
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(SEGMENT_SUFFIX)?.parse().ok()
            })
            .collect();
        ids.sort_unstable();
        let checkpoint = read_checkpoint(&directory.join(CHECKPOINT_FILE)).unwrap_or_default();

        let mut segments = VecDeque::new();
        for id in ids {
            let path = segment_path(&directory, id);
            if id < checkpoint.segment {
                // Acknowledged before the last shutdown; its removal did not finish.
                std::fs::remove_file(&path).map_err(segment_error("removing", path))?;
                continue;
            }
            let bytes = std::fs::metadata(&path)
                .map_err(segment_error("reading", path.clone()))?
                .len();
            segments.push_back(Segment { id, bytes });
        }

        // Only the newest segment can end in a torn record: older ones were flushed whole
        // before the next was begun.
        if let Some(last) = segments.back_mut() {
            let path = segment_path(&directory, last.id);
            let mut magic = [0u8; 8];
            let magic_ok = File::open(&path)
                .and_then(|mut file| file.read_exact(&mut magic))
                .is_ok()
                && &magic == SEGMENT_MAGIC;
            let good_end = if magic_ok {
                walk(&path, FIRST_RECORD, last.bytes, true)
                    .map_err(segment_error("reading", path.clone()))?
                    .end
            } else {
                0
            };
            if good_end < last.bytes {
                tracing::warn!(
                    segment = %path.display(),
                    good_bytes = good_end,
                    bytes = last.bytes,
                    "queue segment ends in a torn or damaged record; cutting it off"
                );
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(segment_error("truncating", path.clone()))?;
                file.set_len(good_end)
                    .and_then(|()| {
                        if good_end == 0 {
                            (&file).write_all(SEGMENT_MAGIC)?;
                        }
                        file.sync_all()
                    })
                    .map_err(segment_error("truncating", path.clone()))?;
                last.bytes = good_end.max(FIRST_RECORD);
            }
        }
        if segments.is_empty() {
            let id = checkpoint.segment.max(1);
            create_segment(&directory, id, config.fsync)?;
            segments.push_back(Segment {
                id,
                bytes: FIRST_RECORD,
            });
        }

        let read = match segments.iter().find(|s| s.id == checkpoint.segment) {
            Some(segment) => Position {
                segment: segment.id,
                offset: checkpoint.offset.clamp(FIRST_RECORD, segment.bytes),
            },
            None => Position {
                segment: segments[0].id,
                offset: FIRST_RECORD,
            },
        };
        let mut unread = 0;
        for segment in &segments {
            if segment.id < read.segment {
                continue;
            }
            let from = if segment.id == read.segment {
                read.offset
            } else {
                FIRST_RECORD
            };
            let path = segment_path(&directory, segment.id);
            unread += walk(&path, from, segment.bytes, false)
                .map_err(segment_error("reading", path))?
                .samples;
        }

        let last = segments.back().map_or(1, |s| s.id);
        let writer_path = segment_path(&directory, last);
        let writer = OpenOptions::new()
            .append(true)
            .open(&writer_path)
            .map_err(segment_error("appending to", writer_path))?;
        let state = State {
            segments,
            writer,
            dirty: false,
            last_sync: Instant::now(),
            read,
            reader: None,
            acked: read,
            checkpointed: checkpoint,
            last_checkpoint: Instant::now(),
            unread,
            in_flight: 0,
            recent: VecDeque::new(),
            recent_samples: 0,
        };
        let queue = Queue {
            max_bytes: std::sync::atomic::AtomicU64::new(config.max_bytes),
            config,
            counters,
            state: Mutex::new(state),
            appended: tokio::sync::Notify::new(),
        };
        queue.update_gauges(&queue.lock());
        tracing::debug!(directory = %queue.config.directory.display(), unread, "queue opened");
        Ok(queue)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves whole records behind: the state stays usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update_gauges(&self, state: &State) {
        let bytes: u64 = state.segments.iter().map(|s| s.bytes).sum();
        self.counters.queue_bytes.store(bytes, Ordering::Relaxed);
        self.counters
            .queue_segments
            .store(state.segments.len() as u64, Ordering::Relaxed);
    }

    /// Changes the queue's size bound (a reload that changes how many queues share the disk);
    /// a smaller one removes the oldest segments at the next append. Segments keep the size
    /// they were opened with.
    pub fn set_max_bytes(&self, max_bytes: u64) {
        self.max_bytes.store(max_bytes, Ordering::Relaxed);
    }

    /// The counters this queue updates.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Appends `samples` (labels already checked by [`crate::Labels::new`]), in order.
    pub fn append(&self, samples: &[Sample]) -> Result<(), Error> {
        if samples.is_empty() {
            return Ok(());
        }
        let mut state = self.lock();
        for batch in samples.chunks(self.config.max_samples_per_record.max(1)) {
            let record = encode_record(batch);
            let current = state.segments.back().map_or(0, |s| s.bytes);
            if current > FIRST_RECORD
                && current + record.len() as u64 > self.config.effective_segment_bytes()
            {
                self.roll(&mut state)?;
            }
            let id = state.segments.back().map_or(0, |s| s.id);
            let start = state.segments.back().map_or(FIRST_RECORD, |s| s.bytes);
            state.writer.write_all(&record).map_err(segment_error(
                "appending to",
                segment_path(&self.config.directory, id),
            ))?;
            state.recent.push_back(RecentRecord {
                start: Position {
                    segment: id,
                    offset: start,
                },
                next: start + record.len() as u64,
                samples: batch.to_vec(),
            });
            state.recent_samples += batch.len();
            while state.recent_samples > MAX_RECENT_SAMPLES {
                let Some(oldest) = state.recent.pop_front() else {
                    break;
                };
                state.recent_samples -= oldest.samples.len();
            }
            state.dirty = true;
            if let Some(last) = state.segments.back_mut() {
                last.bytes += record.len() as u64;
            }
            state.unread += batch.len() as u64;
            self.counters
                .appended
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            let newest = batch.iter().map(|s| s.timestamp_ms).max().unwrap_or(0);
            self.counters
                .newest_appended_ms
                .fetch_max(newest, Ordering::Relaxed);
            self.enforce_limit(&mut state)?;
        }
        self.sync_if_due(&mut state)?;
        self.update_gauges(&state);
        drop(state);
        self.appended.notify_one();
        Ok(())
    }

    /// Closes the segment being written and begins the next.
    fn roll(&self, state: &mut State) -> Result<(), Error> {
        let current = state.segments.back().map_or(0, |s| s.id);
        if self.config.fsync {
            state.writer.sync_data().map_err(segment_error(
                "flushing",
                segment_path(&self.config.directory, current),
            ))?;
        }
        let id = current + 1;
        state.writer = create_segment(&self.config.directory, id, self.config.fsync)?;
        state.dirty = false;
        state.last_sync = Instant::now();
        state.segments.push_back(Segment {
            id,
            bytes: FIRST_RECORD,
        });
        Ok(())
    }

    /// Removes the oldest segments while the queue is over its size, counting the samples in
    /// them that were not yet handed to the sender.
    fn enforce_limit(&self, state: &mut State) -> Result<(), Error> {
        loop {
            let total: u64 = state.segments.iter().map(|s| s.bytes).sum();
            if total <= self.max_bytes.load(Ordering::Relaxed) || state.segments.len() < 2 {
                return Ok(());
            }
            let Some(oldest) = state.segments.pop_front() else {
                return Ok(());
            };
            let path = segment_path(&self.config.directory, oldest.id);
            if state.read.segment <= oldest.id {
                let from = if state.read.segment == oldest.id {
                    state.read.offset
                } else {
                    FIRST_RECORD
                };
                let lost = walk(&path, from, oldest.bytes, false)
                    .map_err(segment_error("reading", path.clone()))?
                    .samples;
                self.counters.drop_samples(DropReason::QueueFull, lost);
                state.unread = state.unread.saturating_sub(lost);
                let next = state.segments.front().map_or(oldest.id + 1, |s| s.id);
                state.read = Position {
                    segment: next,
                    offset: FIRST_RECORD,
                };
                state.reader = None;
                tracing::warn!(segment = %path.display(), dropped_samples = lost, "queue full: oldest segment dropped");
            }
            std::fs::remove_file(&path).map_err(segment_error("removing", path))?;
        }
    }

    fn sync_if_due(&self, state: &mut State) -> Result<(), Error> {
        if state.dirty && state.last_sync.elapsed() >= self.config.sync_interval {
            self.sync_locked(state)?;
        }
        Ok(())
    }

    fn sync_locked(&self, state: &mut State) -> Result<(), Error> {
        if state.dirty && self.config.fsync {
            let id = state.segments.back().map_or(0, |s| s.id);
            state.writer.sync_data().map_err(segment_error(
                "flushing",
                segment_path(&self.config.directory, id),
            ))?;
            state.dirty = false;
        }
        state.last_sync = Instant::now();
        Ok(())
    }

    /// Flushes appended records to the disk now.
    pub fn sync(&self) -> Result<(), Error> {
        self.sync_locked(&mut self.lock())
    }

    /// Samples appended and not yet read by the sender.
    pub fn unread_samples(&self) -> u64 {
        self.lock().unread
    }

    /// Waits until something is appended (or was, since the last wait).
    pub async fn appended(&self) {
        self.appended.notified().await
    }

    /// Reads the next records, whole, until at least `max_samples` samples or the end; the
    /// samples of a damaged record are counted as dropped and the rest of its segment skipped.
    pub fn read_chunk(&self, max_samples: usize) -> Result<Chunk, Error> {
        let mut state = self.lock();
        let state = &mut *state;
        let mut samples = Vec::new();
        while samples.len() < max_samples {
            let Some(index) = state
                .segments
                .iter()
                .position(|s| s.id >= state.read.segment)
            else {
                break;
            };
            let segment = &state.segments[index];
            let is_last = index + 1 == state.segments.len();
            if segment.id != state.read.segment {
                state.read = Position {
                    segment: segment.id,
                    offset: FIRST_RECORD,
                };
            }
            let limit = segment.bytes;
            if state.read.offset + HEADER_LEN as u64 > limit {
                if is_last {
                    // At the end nothing is unread, whatever the count says.
                    state.unread = 0;
                    break;
                }
                state.read = Position {
                    segment: segment.id + 1,
                    offset: FIRST_RECORD,
                };
                continue;
            }
            // Records the sender has passed are of no more use in memory.
            while state.recent.front().is_some_and(|r| r.start < state.read) {
                if let Some(passed) = state.recent.pop_front() {
                    state.recent_samples -= passed.samples.len();
                }
            }
            if state.recent.front().is_some_and(|r| r.start == state.read)
                && let Some(record) = state.recent.pop_front()
            {
                state.recent_samples -= record.samples.len();
                let count = record.samples.len() as u64;
                state.unread = state.unread.saturating_sub(count);
                state.in_flight += count;
                state.read.offset = record.next;
                samples.extend(record.samples);
                continue;
            }
            let path = segment_path(&self.config.directory, segment.id);
            match read_record(
                &mut state.reader,
                &path,
                segment.id,
                state.read.offset,
                limit,
            ) {
                Ok(Ok((next, batch))) => {
                    state.unread = state.unread.saturating_sub(batch.len() as u64);
                    state.in_flight += batch.len() as u64;
                    state.read.offset = next;
                    samples.extend(batch);
                }
                Ok(Err(count)) => {
                    tracing::warn!(segment = %path.display(), offset = state.read.offset, "damaged queue record; skipping the rest of its segment");
                    // What the rest of the segment held, as far as its headers can be read.
                    let rest = walk(&path, state.read.offset, limit, false)
                        .map(|w| w.samples)
                        .unwrap_or(0)
                        .max(u64::from(count));
                    self.counters.drop_samples(DropReason::Corrupt, rest);
                    state.unread = state.unread.saturating_sub(rest);
                    state.reader = None;
                    state.read.offset = limit;
                }
                Err(source) => {
                    return Err(Error::Segment {
                        operation: "reading",
                        path,
                        source,
                    });
                }
            }
        }
        Ok(Chunk {
            samples,
            end: state.read,
        })
    }

    /// Marks everything before `end` (a [`Chunk::end`]) as sent or given up: `samples` of
    /// them. Segments wholly before it are removed; the checkpoint follows within a second.
    pub fn ack(&self, end: Position, samples: u64) -> Result<(), Error> {
        let mut state = self.lock();
        state.acked = end;
        state.in_flight = state.in_flight.saturating_sub(samples);
        while state.segments.len() > 1 && state.segments[0].id < end.segment {
            if let Some(done) = state.segments.pop_front() {
                let path = segment_path(&self.config.directory, done.id);
                std::fs::remove_file(&path).map_err(segment_error("removing", path))?;
            }
        }
        self.update_gauges(&state);
        Ok(())
    }

    /// When [`Queue::housekeeping`] has something to do: appends not flushed yet, or an
    /// acknowledgement not in the checkpoint yet, each due `sync_interval` after the last
    /// time. `None` when nothing waits, so an idle sender sleeps instead of waking to find
    /// nothing to do.
    pub fn housekeeping_due(&self) -> Option<Instant> {
        let state = self.lock();
        let sync = state
            .dirty
            .then(|| state.last_sync + self.config.sync_interval);
        let checkpoint = (state.acked != state.checkpointed)
            .then(|| state.last_checkpoint + self.config.sync_interval);
        sync.into_iter().chain(checkpoint).min()
    }

    /// Flushes appends and writes the checkpoint when each is due (see
    /// [`Queue::housekeeping_due`]).
    pub fn housekeeping(&self) -> Result<(), Error> {
        let mut state = self.lock();
        self.sync_if_due(&mut state)?;
        if state.last_checkpoint.elapsed() >= self.config.sync_interval {
            self.checkpoint_locked(&mut state)?;
        }
        Ok(())
    }

    fn checkpoint_locked(&self, state: &mut State) -> Result<(), Error> {
        state.last_checkpoint = Instant::now();
        if state.acked == state.checkpointed {
            return Ok(());
        }
        let path = self.config.directory.join(CHECKPOINT_FILE);
        let text = format!("{} {}\n", state.acked.segment, state.acked.offset);
        let written = if self.config.fsync {
            file_sd::write_atomically(&path, text.as_bytes(), file_sd::PUBLIC_MODE)
        } else {
            // Overwritten in place by one small write, padded to a fixed width so that no
            // longer earlier text shows through: a crash of the process cannot tear a write
            // the kernel has taken, and no file is created or renamed each time.
            write_in_place(&path, &format!("{:<40}\n", text.trim_end()))
        };
        written.map_err(|source| Error::Checkpoint { path, source })?;
        state.checkpointed = state.acked;
        Ok(())
    }

    /// Flushes appends and writes the checkpoint now: what a clean shutdown calls.
    pub fn close(&self) -> Result<(), Error> {
        let mut state = self.lock();
        self.sync_locked(&mut state)?;
        self.checkpoint_locked(&mut state)
    }

    /// Forgets what was read and not acknowledged, so it is read again (the sender calls this
    /// when it starts). Samples whose segment was dropped meanwhile are counted as dropped.
    pub fn rewind(&self) -> Result<(), Error> {
        let mut state = self.lock();
        let state = &mut *state;
        let before = state.unread + state.in_flight;
        let first = state.segments.front().map_or(0, |s| s.id);
        state.read = if state.acked.segment >= first {
            state.acked
        } else {
            Position {
                segment: first,
                offset: FIRST_RECORD,
            }
        };
        state.reader = None;
        let mut unread = 0;
        for segment in &state.segments {
            if segment.id < state.read.segment {
                continue;
            }
            let from = if segment.id == state.read.segment {
                state.read.offset.max(FIRST_RECORD)
            } else {
                FIRST_RECORD
            };
            let path = segment_path(&self.config.directory, segment.id);
            unread += walk(&path, from, segment.bytes, false)
                .map_err(segment_error("reading", path))?
                .samples;
        }
        self.counters
            .drop_samples(DropReason::QueueFull, before.saturating_sub(unread));
        state.unread = unread;
        state.in_flight = 0;
        Ok(())
    }

    /// The position after the last acknowledged sample.
    pub fn acknowledged(&self) -> Position {
        self.lock().acked
    }
}

/// Reads the record at `offset` of segment `id`: `Ok(Ok((next offset, samples)))`, or
/// `Ok(Err(count))` when it is damaged (`count` as its header says, 0 if unreadable).
fn read_record(
    reader: &mut Option<(u64, BufReader<File>, u64)>,
    path: &Path,
    id: u64,
    offset: u64,
    limit: u64,
) -> std::io::Result<Result<(u64, Vec<Sample>), u32>> {
    if !matches!(reader, Some((open, _, at)) if *open == id && *at == offset) {
        let mut file = BufReader::with_capacity(256 * 1024, File::open(path)?);
        file.seek(SeekFrom::Start(offset))?;
        *reader = Some((id, file, offset));
    }
    let Some((_, file, at)) = reader.as_mut() else {
        return Ok(Err(0));
    };
    let mut header = [0u8; HEADER_LEN];
    if file.read_exact(&mut header).is_err() {
        *at = u64::MAX;
        return Ok(Err(0));
    }
    let parsed = Header::parse(&header);
    let next = offset + HEADER_LEN as u64 + u64::from(parsed.payload_len);
    if parsed.payload_len > MAX_PAYLOAD_LEN || next > limit {
        *at = u64::MAX;
        return Ok(Err(0));
    }
    let mut payload = vec![0u8; parsed.payload_len as usize];
    if file.read_exact(&mut payload).is_err() || !parsed.matches(&payload) {
        *at = u64::MAX;
        return Ok(Err(parsed.count));
    }
    *at = next;
    Ok(match decode_record_payload(&payload, parsed.count) {
        Some(samples) => Ok((next, samples)),
        None => Err(parsed.count),
    })
}

/// Writes `text` over the start of the file at `path` (created when missing) in one write.
fn write_in_place(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    file.write_all_at(text.as_bytes(), 0)
}

fn create_segment(directory: &Path, id: u64, fsync: bool) -> Result<File, Error> {
    let path = segment_path(directory, id);
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(segment_error("creating", path.clone()))?;
    file.write_all(SEGMENT_MAGIC)
        .and_then(|()| match fsync {
            true => file.sync_data().and_then(|()| sync_directory(directory)),
            false => Ok(()),
        })
        .map_err(segment_error("creating", path))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::labels::{Labels, stale_marker};

    fn directory(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("remote-write-queue-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn samples(range: std::ops::Range<i64>) -> Vec<Sample> {
        range
            .map(|i| Sample {
                labels: Labels::new([
                    ("__name__", "http_requests_total".to_owned()),
                    ("instance", format!("10.0.1.{}:8080", i % 10)),
                    ("job", "demo-app".to_owned()),
                    ("path", "/work".to_owned()),
                    ("ecs_task_id", "0123456789abcdef0123456789abcdef".to_owned()),
                ])
                .unwrap(),
                timestamp_ms: 1_700_000_000_000 + i * 15_000,
                value: if i % 100 == 99 {
                    stale_marker()
                } else {
                    i as f64 * 0.5
                },
            })
            .collect()
    }

    fn config(dir: &Path) -> QueueConfig {
        QueueConfig {
            max_samples_per_record: 100,
            ..QueueConfig::new(dir)
        }
    }

    fn open(config: &QueueConfig) -> (Queue, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        (
            Queue::open(config.clone(), Arc::clone(&counters)).unwrap(),
            counters,
        )
    }

    fn read_all(queue: &Queue) -> Vec<Sample> {
        let mut all = Vec::new();
        loop {
            let chunk = queue.read_chunk(250).unwrap();
            if chunk.samples.is_empty() {
                return all;
            }
            queue.ack(chunk.end, chunk.samples.len() as u64).unwrap();
            all.extend(chunk.samples);
        }
    }

    fn same(a: &[Sample], b: &[Sample]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_as(y))
    }

    #[test]
    fn a_lowered_bound_removes_the_oldest_segments_at_the_next_append() {
        let dir = directory("lowered");
        let config = QueueConfig {
            segment_bytes: 16 * 1024,
            ..config(&dir)
        };
        let (queue, counters) = open(&config);
        let mut next = 0;
        while counters.stats().queue_bytes < 200 * 1024 {
            queue.append(&samples(next..next + 1000)).unwrap();
            next += 1000;
        }
        assert_eq!(counters.stats().dropped(DropReason::QueueFull), 0);
        queue.set_max_bytes(64 * 1024);
        queue.append(&samples(next..next + 10)).unwrap();
        let stats = counters.stats();
        assert!(stats.queue_bytes <= 64 * 1024, "{stats:?}");
        assert!(stats.dropped(DropReason::QueueFull) > 0, "{stats:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn records_kept_in_memory_read_the_same_as_from_the_disk() {
        let dir = directory("recent");
        let config = config(&dir);
        let all = samples(0..1000);
        let (queue, _) = open(&config);
        queue.append(&all[..500]).unwrap();
        // From memory: the same samples, sharing the appended labels.
        let chunk = queue.read_chunk(1000).unwrap();
        assert!(same(&chunk.samples, &all[..500]));
        assert!(queue.lock().recent.is_empty());
        // Not acknowledged: the sender starts again and reads them from the disk.
        queue.rewind().unwrap();
        queue.append(&all[500..]).unwrap();
        assert_eq!(queue.lock().recent_samples, 500);
        let again = read_all(&queue);
        assert!(same(&again, &all));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_reopened_queue_resumes_after_the_last_acknowledged_sample() {
        resumes_after_the_last_acknowledged_sample(config(&directory("resume")));
    }

    #[test]
    fn without_fsync_a_reopened_queue_resumes_all_the_same() {
        // What a crash of the process leaves is what the operating system was given, flushed
        // or not.
        resumes_after_the_last_acknowledged_sample(QueueConfig {
            fsync: false,
            ..config(&directory("resume-no-fsync"))
        });
    }

    fn resumes_after_the_last_acknowledged_sample(config: QueueConfig) {
        let dir = config.directory.clone();
        let all = samples(0..1000);
        {
            let (queue, counters) = open(&config);
            queue.append(&all).unwrap();
            assert_eq!(counters.stats().samples_appended, 1000);
            let chunk = queue.read_chunk(300).unwrap();
            assert_eq!(chunk.samples.len(), 300);
            assert!(same(&chunk.samples, &all[..300]));
            queue.ack(chunk.end, 300).unwrap();
            // Read and not acknowledged: read again after the restart.
            let _ = queue.read_chunk(100).unwrap();
            queue.close().unwrap();
        }
        let (queue, _) = open(&config);
        assert_eq!(queue.unread_samples(), 700);
        assert!(same(&read_all(&queue), &all[300..]));
        // Without a clean close the checkpoint may lag: samples come again, never fewer.
        queue.append(&all[..10]).unwrap();
        drop(queue);
        let (queue, _) = open(&config);
        assert!(queue.unread_samples() >= 10);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_record_at_the_end_is_cut_off_and_the_queue_goes_on() {
        let dir = directory("torn");
        let config = config(&dir);
        let all = samples(0..300);
        {
            let (queue, _) = open(&config);
            queue.append(&all).unwrap();
            queue.close().unwrap();
        }
        let segment = segment_path(&dir, 1);
        let length = std::fs::metadata(&segment).unwrap().len();
        // A crash in the middle of writing the third record: keep half of it.
        let third = {
            let (queue, _) = open(&config);
            let first_two = queue.read_chunk(200).unwrap();
            assert_eq!(first_two.samples.len(), 200);
            first_two.end.offset
        };
        let torn = third + (length - third) / 2;
        OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap()
            .set_len(torn)
            .unwrap();
        let (queue, _) = open(&config);
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), third);
        assert_eq!(queue.unread_samples(), 200);
        queue.append(&all[200..]).unwrap();
        assert!(same(&read_all(&queue), &all));

        // Garbage after the last record, and a flipped bit inside it.
        drop(queue);
        let dir = directory("garbage");
        let config = QueueConfig::new(&dir);
        {
            let (queue, _) = open(&config);
            queue.append(&all[..50]).unwrap();
            queue.append(&all[50..100]).unwrap();
            queue.close().unwrap();
        }
        let segment = segment_path(&dir, 1);
        let mut bytes = std::fs::read(&segment).unwrap();
        let last = bytes.len() - 5;
        bytes[last] ^= 0x40;
        std::fs::write(&segment, &bytes).unwrap();
        let (queue, _) = open(&config);
        assert_eq!(queue.unread_samples(), 50);
        assert!(same(&read_all(&queue), &all[..50]));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(directory("torn"));
    }

    #[test]
    fn a_full_queue_drops_its_oldest_segments_and_counts_every_sample() {
        let dir = directory("bound");
        let config = QueueConfig {
            max_bytes: 64 * 1024,
            segment_bytes: 16 * 1024,
            max_samples_per_record: 50,
            ..QueueConfig::new(&dir)
        };
        let (queue, counters) = open(&config);
        let all = samples(0..20_000);
        for batch in all.chunks(50) {
            queue.append(batch).unwrap();
            let stats = counters.stats();
            assert!(
                stats.queue_bytes <= config.max_bytes,
                "{}",
                stats.queue_bytes
            );
        }
        let stats = counters.stats();
        let dropped = stats.dropped(DropReason::QueueFull);
        assert!(dropped > 0);
        assert_eq!(dropped + queue.unread_samples(), 20_000);
        let segments = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".seg")
            })
            .count() as u64;
        assert_eq!(segments, stats.queue_segments);
        // What is left is exactly the newest samples.
        let left = read_all(&queue);
        assert!(same(&left, &all[dropped as usize..]));
        // Acknowledged segments are removed.
        assert_eq!(counters.stats().queue_segments, 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_segment_dropped_while_its_samples_are_in_flight_is_counted_once() {
        let dir = directory("inflight");
        let config = QueueConfig {
            max_bytes: 64 * 1024,
            segment_bytes: 16 * 1024,
            max_samples_per_record: 50,
            ..QueueConfig::new(&dir)
        };
        let (queue, counters) = open(&config);
        let all = samples(0..20_000);
        queue.append(&all[..50]).unwrap();
        let in_flight = queue.read_chunk(50).unwrap();
        for batch in all[50..].chunks(50) {
            queue.append(batch).unwrap();
        }
        // The sender stops before acknowledging: the next run reads again from the queue.
        queue.rewind().unwrap();
        drop(in_flight);
        let dropped = counters.stats().dropped(DropReason::QueueFull);
        assert_eq!(dropped + queue.unread_samples(), 20_000);
        let _ = std::fs::remove_dir_all(&dir);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Any appends, reads and reopenings: after a clean close, what is read is exactly
        /// what was appended after the acknowledged samples, in order.
        #[test]
        fn any_appends_reads_and_reopenings_keep_the_order(
            steps in proptest::collection::vec((0usize..300, 0usize..400, proptest::bool::ANY), 1..8)
        ) {
            let dir = directory("prop");
            let config = QueueConfig {
                max_bytes: 1 << 30,
                segment_bytes: 4096,
                max_samples_per_record: 37,
                ..QueueConfig::new(&dir)
            };
            let all = samples(0..3000);
            let (mut appended, mut acked) = (0usize, 0usize);
            let (mut queue, _) = open(&config);
            for (append, read, reopen) in steps {
                let end = (appended + append).min(all.len());
                queue.append(&all[appended..end]).unwrap();
                appended = end;
                let chunk = queue.read_chunk(read).unwrap();
                proptest::prop_assert!(same(&chunk.samples, &all[acked..acked + chunk.samples.len()]));
                acked += chunk.samples.len();
                queue.ack(chunk.end, chunk.samples.len() as u64).unwrap();
                if reopen {
                    queue.close().unwrap();
                    drop(queue);
                    queue = open(&config).0;
                    proptest::prop_assert_eq!(queue.unread_samples() as usize, appended - acked);
                }
            }
            proptest::prop_assert!(same(&read_all(&queue), &all[acked..appended]));
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn bytes_per_sample_on_disk() {
        let dir = directory("size");
        let config = QueueConfig::new(&dir);
        let (queue, counters) = open(&config);
        // As a scrape appends: one record per scrape of 1000 series.
        let all = samples(0..10_000);
        for scrape in all.chunks(1000) {
            queue.append(scrape).unwrap();
        }
        let per_sample = counters.stats().queue_bytes as f64 / 10_000.0;
        println!("queue bytes per sample: {per_sample:.1}");
        // Five labels of ~110 bytes in all, stored once per sample before compression.
        assert!(per_sample < 40.0, "{per_sample}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
