//! The state owner: the one task that owns the user directory and applies events in order.
//!
//! PLUMBING STAGE: answers every host request with a failure until the directory lands.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::events::{Event, HostOutcome, LookupAnswer};
use crate::config::Config;

/// Wall-clock seconds, plus an offset tests can advance.
#[derive(Debug, Default, Clone, Copy)]
pub struct Clock {
    offset: Duration,
}

impl Clock {
    /// Unix time in whole seconds.
    pub fn now_secs(&self) -> u64 {
        (SystemTime::now() + self.offset)
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, by: Duration) {
        self.offset += by;
    }
}

/// The state owner.
#[derive(Debug)]
pub struct Owner {
    clock: Clock,
}

impl Owner {
    /// Builds the initial state from the configuration.
    pub fn new(_config: &Config) -> Result<Owner, String> {
        Ok(Owner {
            clock: Clock::default(),
        })
    }

    /// Applies events until the queue closes or `shutdown` fires.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Event>, shutdown: CancellationToken) {
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => break,
                ev = rx.recv() => match ev { Some(ev) => ev, None => break },
            };
            self.apply(ev);
        }
    }

    fn apply(&mut self, ev: Event) {
        match ev {
            Event::HostRequest(req) => {
                let _ = req.reply.send(LookupAnswer::Done(HostOutcome::Failed));
            }
            Event::NotifyRefresh { .. } | Event::KickDone { .. } => {}
            Event::AdvanceClock(d) => self.clock.advance(d),
        }
    }
}
