//! The table of open connections behind [`crate::serve()`]: what each connection is doing
//! (waiting for a request, running a handler, writing a response), when it must be closed,
//! and which one to close when there is no room for another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The deadlines a connection is held to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// From accepting a connection, or from the first byte of a later request, until the
    /// request's headers are complete.
    pub header_read: Duration,
    /// From the end of a response until the first byte of the next request, and the longest
    /// pause while a response is written.
    pub idle: Duration,
}

/// Why a connection is closed before its client closes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closing {
    /// The request headers did not arrive in time.
    HeaderReadTimeout,
    /// No new request came within the idle timeout.
    IdleTimeout,
    /// The client stopped reading the response.
    WriteStalled,
    /// Another connection needed the room.
    MakingRoom,
}

impl Closing {
    /// For logs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Closing::HeaderReadTimeout => "header read timeout",
            Closing::IdleTimeout => "idle timeout",
            Closing::WriteStalled => "the client stopped reading the response",
            Closing::MakingRoom => "closed to make room for a new connection",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Between requests, or before the first one.
    Waiting {
        since: Instant,
        first_byte: Option<Instant>,
        served: bool,
    },
    /// A handler is computing the response; its own timeouts bound it.
    Handling,
    /// The response is being written; `progress` is when the client last took some of it.
    Writing { progress: Instant },
}

#[derive(Debug)]
struct Activity {
    phase: Phase,
    close: bool,
}

/// One connection's activity, updated by its reads and writes and by its requests.
#[derive(Debug)]
pub(crate) struct Connection {
    id: u64,
    activity: Mutex<Activity>,
    // One waiter (the connection's watchdog); `notify_one` keeps a permit when it is busy.
    changed: Notify,
}

impl Connection {
    fn new(id: u64, now: Instant) -> Connection {
        Connection {
            id,
            activity: Mutex::new(Activity {
                phase: Phase::Waiting {
                    since: now,
                    first_byte: None,
                    served: false,
                },
                close: false,
            }),
            changed: Notify::new(),
        }
    }

    fn activity(&self) -> MutexGuard<'_, Activity> {
        // The activity is plain data updated in single assignments: a panic elsewhere while
        // the lock was held cannot have left it half-written.
        self.activity.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived from the client.
    pub(crate) fn read(&self, now: Instant) {
        let mut activity = self.activity();
        if let Phase::Waiting {
            first_byte: first_byte @ None,
            ..
        } = &mut activity.phase
        {
            *first_byte = Some(now);
            drop(activity);
            // The header deadline may come before the idle deadline the watchdog sleeps on.
            self.changed.notify_one();
        }
    }

    /// The client took some of the response.
    pub(crate) fn wrote(&self, now: Instant) {
        if let Phase::Writing { progress } = &mut self.activity().phase {
            *progress = now;
        }
    }

    /// A request's headers are complete and its handler runs.
    pub(crate) fn request_started(&self) {
        self.set_phase(Phase::Handling);
    }

    /// The handler returned; the response is being written.
    pub(crate) fn response_started(&self, now: Instant) {
        self.set_phase(Phase::Writing { progress: now });
    }

    /// The response is written (or abandoned); the connection waits for the next request.
    pub(crate) fn response_finished(&self, now: Instant) {
        self.set_phase(Phase::Waiting {
            since: now,
            first_byte: None,
            served: true,
        });
    }

    fn set_phase(&self, phase: Phase) {
        self.activity().phase = phase;
        self.changed.notify_one();
    }

    /// Asks the connection's watchdog to close it now.
    pub(crate) fn close(&self) {
        self.activity().close = true;
        self.changed.notify_one();
    }

    /// Since when the connection has been waiting for a request, if it is: connections in
    /// the middle of a request are never closed to make room.
    fn waiting_since(&self) -> Option<Instant> {
        let activity = self.activity();
        match activity.phase {
            Phase::Waiting { since, .. } if !activity.close => Some(since),
            _ => None,
        }
    }

    /// When the connection must be closed and why, as things stand; `None` while a handler
    /// runs.
    fn deadline(&self, limits: &Limits) -> Option<(Instant, Closing)> {
        let activity = self.activity();
        if activity.close {
            return Some((Instant::now(), Closing::MakingRoom));
        }
        match activity.phase {
            Phase::Waiting {
                since,
                served: false,
                ..
            } => Some((since + limits.header_read, Closing::HeaderReadTimeout)),
            Phase::Waiting {
                first_byte: Some(first_byte),
                served: true,
                ..
            } => Some((first_byte + limits.header_read, Closing::HeaderReadTimeout)),
            Phase::Waiting {
                since,
                first_byte: None,
                served: true,
            } => Some((since + limits.idle, Closing::IdleTimeout)),
            Phase::Handling => None,
            Phase::Writing { progress } => Some((progress + limits.idle, Closing::WriteStalled)),
        }
    }

    /// Completes when the connection must be closed, with the reason.
    pub(crate) async fn expired(&self, limits: Limits) -> Closing {
        loop {
            let changed = self.changed.notified();
            match self.deadline(&limits) {
                Some((deadline, reason)) => {
                    if deadline <= Instant::now() {
                        return reason;
                    }
                    tokio::select! {
                        _ = changed => {}
                        _ = tokio::time::sleep_until(deadline) => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

/// What [`Connections::admit`] decided.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Serve the connection; `made_room` when another one was closed for it.
    Admitted {
        /// The new connection.
        connection: Arc<Connection>,
        /// Whether a waiting connection was closed to make room.
        made_room: bool,
    },
    /// Every open connection is in the middle of a request and the table is full.
    Full,
}

#[derive(Debug)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Arc<Connection>>,
    cap: usize,
}

/// Every open connection, and the cap on their number.
#[derive(Debug)]
pub(crate) struct Connections {
    table: Mutex<Table>,
}

impl Connections {
    /// An empty table for at most `cap` connections (at least one).
    pub(crate) fn new(cap: usize) -> Connections {
        Connections {
            table: Mutex::new(Table {
                next_id: 0,
                open: HashMap::new(),
                cap: cap.max(1),
            }),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // Every update of the table is a single insert or remove: a poisoned lock still
        // guards a consistent table.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes room for a newly accepted connection (closing the connection that has waited
    /// the longest for a request when the table is full) and records it.
    pub(crate) fn admit(&self, now: Instant) -> Admission {
        let mut table = self.table();
        let made_room = table.open.len() >= table.cap;
        if made_room && evict_oldest_waiting(&mut table, 1) == 0 {
            return Admission::Full;
        }
        let id = table.next_id;
        table.next_id += 1;
        let connection = Arc::new(Connection::new(id, now));
        table.open.insert(id, Arc::clone(&connection));
        Admission::Admitted {
            connection,
            made_room,
        }
    }

    /// Forgets a closed connection.
    pub(crate) fn remove(&self, connection: &Connection) {
        self.table().open.remove(&connection.id);
    }

    /// The process ran out of file descriptors with this many connections open: from now on
    /// the cap stays below that number, leaving descriptors for the work requests do
    /// (outbound calls, files), and the connections above the new cap that wait for a
    /// request are closed (at least one, so the connection waiting in the backlog gets in).
    /// Returns the new cap and how many connections were closed.
    pub(crate) fn out_of_descriptors(&self) -> (usize, usize) {
        let mut table = self.table();
        let open = table.open.len();
        let headroom = 16 + open / 16;
        table.cap = table.cap.min(open.saturating_sub(headroom)).max(1);
        let excess = open.saturating_sub(table.cap).max(1);
        let closed = evict_oldest_waiting(&mut table, excess);
        (table.cap, closed)
    }

    /// How many connections are open.
    pub(crate) fn len(&self) -> usize {
        self.table().open.len()
    }

    /// The current cap.
    pub(crate) fn cap(&self) -> usize {
        self.table().cap
    }
}

/// Closes (and forgets) up to `count` connections that are waiting for a request, those
/// waiting the longest first: a client that connected and sent nothing, or that went quiet
/// after its last response, loses its connection before anyone in the middle of a request.
fn evict_oldest_waiting(table: &mut Table, count: usize) -> usize {
    let mut waiting: Vec<(Instant, u64)> = table
        .open
        .iter()
        .filter_map(|(id, connection)| Some((connection.waiting_since()?, *id)))
        .collect();
    waiting.sort_unstable();
    let mut closed = 0;
    for (_, id) in waiting.into_iter().take(count) {
        if let Some(connection) = table.open.remove(&id) {
            connection.close();
            closed += 1;
        }
    }
    closed
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

    use super::*;

    const LIMITS: Limits = Limits {
        header_read: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };

    fn admitted(connections: &Connections, now: Instant) -> Arc<Connection> {
        match connections.admit(now) {
            Admission::Admitted { connection, .. } => connection,
            Admission::Full => panic!("not admitted"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_connection_has_the_header_read_timeout_from_its_accept() {
        let start = Instant::now();
        let connection = Connection::new(0, start);
        assert_eq!(
            connection.deadline(&LIMITS),
            Some((start + LIMITS.header_read, Closing::HeaderReadTimeout))
        );
        // Bytes trickling in do not extend it.
        connection.read(start + Duration::from_secs(3));
        connection.read(start + Duration::from_secs(6));
        assert_eq!(
            connection.deadline(&LIMITS),
            Some((start + LIMITS.header_read, Closing::HeaderReadTimeout))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn between_requests_the_idle_timeout_runs_until_the_first_byte_then_the_header_timeout() {
        let start = Instant::now();
        let connection = Connection::new(0, start);
        connection.request_started();
        assert_eq!(
            connection.deadline(&LIMITS),
            None,
            "a handler runs unbounded"
        );
        connection.response_started(start + Duration::from_secs(1));
        assert_eq!(
            connection.deadline(&LIMITS),
            Some((start + Duration::from_secs(61), Closing::WriteStalled))
        );
        connection.wrote(start + Duration::from_secs(2));
        assert_eq!(
            connection.deadline(&LIMITS),
            Some((start + Duration::from_secs(62), Closing::WriteStalled))
        );
        let done = start + Duration::from_secs(3);
        connection.response_finished(done);
        assert_eq!(
            connection.deadline(&LIMITS),
            Some((done + LIMITS.idle, Closing::IdleTimeout))
        );
        let next = done + Duration::from_secs(50);
        connection.read(next);
        assert_eq!(
            connection.deadline(&LIMITS),
            Some((next + LIMITS.header_read, Closing::HeaderReadTimeout))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_fires_at_the_deadline_and_follows_changes() {
        let connection = Arc::new(Connection::new(0, Instant::now()));
        let start = Instant::now();
        let watched = Arc::clone(&connection);
        let watchdog = tokio::spawn(async move { watched.expired(LIMITS).await });
        tokio::time::sleep(Duration::from_secs(5)).await;
        connection.request_started();
        // A handler that runs past every deadline is not interrupted.
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert!(!watchdog.is_finished());
        connection.response_started(Instant::now());
        connection.response_finished(Instant::now());
        let idle_from = Instant::now();
        let reason = watchdog.await.expect("watchdog");
        assert_eq!(reason, Closing::IdleTimeout);
        assert_eq!(Instant::now() - idle_from, LIMITS.idle);
        assert_eq!(Instant::now() - start, Duration::from_secs(165));
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_byte_brings_the_watchdog_forward() {
        let connection = Arc::new(Connection::new(0, Instant::now()));
        connection.request_started();
        connection.response_finished(Instant::now());
        let watched = Arc::clone(&connection);
        let watchdog = tokio::spawn(async move { watched.expired(LIMITS).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        let first_byte = Instant::now();
        connection.read(first_byte);
        assert_eq!(
            watchdog.await.expect("watchdog"),
            Closing::HeaderReadTimeout
        );
        assert_eq!(Instant::now() - first_byte, LIMITS.header_read);
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_the_connection_waiting_longest_makes_room_never_a_busy_one() {
        let connections = Connections::new(3);
        let start = Instant::now();
        let busy = admitted(&connections, start);
        busy.request_started();
        let idle_long = admitted(&connections, start + Duration::from_secs(1));
        let fresh = admitted(&connections, start + Duration::from_secs(2));
        // `idle_long` served a request after `fresh` connected: it has waited less.
        idle_long.request_started();
        idle_long.response_finished(start + Duration::from_secs(3));
        let newcomer = admitted(&connections, start + Duration::from_secs(4));
        assert_eq!(connections.len(), 3);
        assert_eq!(
            fresh.deadline(&LIMITS).map(|d| d.1),
            Some(Closing::MakingRoom)
        );
        assert_ne!(
            busy.deadline(&LIMITS).map(|d| d.1),
            Some(Closing::MakingRoom)
        );
        assert_ne!(
            idle_long.deadline(&LIMITS).map(|d| d.1),
            Some(Closing::MakingRoom)
        );

        // With everything busy, there is no room.
        idle_long.request_started();
        newcomer.request_started();
        assert!(matches!(
            connections.admit(start + Duration::from_secs(5)),
            Admission::Full
        ));
        connections.remove(&busy);
        assert!(matches!(
            connections.admit(start + Duration::from_secs(6)),
            Admission::Admitted {
                made_room: false,
                ..
            }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn running_out_of_descriptors_lowers_the_cap_with_headroom_and_closes_the_excess() {
        let connections = Connections::new(10_000);
        let start = Instant::now();
        let all: Vec<_> = (0..1000u64)
            .map(|i| admitted(&connections, start + Duration::from_millis(i)))
            .collect();
        all[0].request_started();
        let (cap, closed) = connections.out_of_descriptors();
        assert_eq!(cap, 1000 - 16 - 1000 / 16);
        assert_eq!(closed, 1000 - cap);
        assert_eq!(connections.len(), cap);
        assert_eq!(connections.cap(), cap);
        // The busy one stayed; the oldest waiting ones went.
        assert_eq!(all[0].deadline(&LIMITS), None);
        assert_eq!(
            all[1].deadline(&LIMITS).map(|d| d.1),
            Some(Closing::MakingRoom)
        );
        assert_eq!(
            all[999].deadline(&LIMITS).map(|d| d.1),
            Some(Closing::HeaderReadTimeout)
        );
        // Below the new cap, running out again still closes one to let the next one in.
        let (again, closed) = connections.out_of_descriptors();
        assert!(again < cap);
        assert!(closed >= 1);
    }

    #[test]
    fn the_cap_is_at_least_one() {
        let connections = Connections::new(0);
        assert_eq!(connections.cap(), 1);
        assert_eq!(connections.out_of_descriptors().0, 1);
    }
}
