//! Director records ("director hosts", §1.1) and ring order (§3.3).

use director_parsers::ring::Sync;
use std::fmt;
use std::net::IpAddr;

/// A director's ring address. `Ord` is ring order: IPv4 before IPv6, address bytes, port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DirAddr {
    /// The director's address.
    pub ip: IpAddr,
    /// Its ring listener port.
    pub port: u16,
}

impl DirAddr {
    /// A director address.
    pub fn new(ip: IpAddr, port: u16) -> Self {
        DirAddr { ip, port }
    }
}

impl fmt::Display for DirAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            director_parsers::ip::ip_to_string(&self.ip),
            self.port
        )
    }
}

/// One director record.
#[derive(Clone, Debug)]
pub(super) struct Peer {
    pub addr: DirAddr,
    pub removed: bool,
    /// When a removed record is purged (seconds).
    pub removed_at: u64,
    /// Highest origin seq seen from it (§5.2).
    pub last_seq: u32,
    pub last_sync_seq: u32,
    pub last_sync_timestamp: u64,
    pub sync_dup_count: u32,
    pub desynced_hosts_hash: u32,
    pub last_network_failure: Option<u64>,
    pub last_protocol_failure: Option<u64>,
    /// A SYNC of this origin waiting for us to get a right (§6.3 step 6).
    pub delayed_sync: Option<Sync>,
}

impl Peer {
    pub fn new(addr: DirAddr) -> Self {
        Peer {
            addr,
            removed: false,
            removed_at: 0,
            last_seq: 0,
            last_sync_seq: 0,
            last_sync_timestamp: 0,
            sync_dup_count: 0,
            desynced_hosts_hash: 0,
            last_network_failure: None,
            last_protocol_failure: None,
            delayed_sync: None,
        }
    }

    /// "Restart reset" (§1.1): a restarted director counts from 1 again.
    pub fn restart_reset(&mut self) {
        self.last_seq = 0;
        self.last_sync_seq = 0;
        self.sync_dup_count = 0;
        self.last_sync_timestamp = 0;
    }
}

/// Failure marks are honoured for this long (§3.4).
pub(super) const FAILURE_SKIP_SECS: u64 = 60;

/// The sorted director list, self included.
#[derive(Clone, Debug)]
pub(super) struct Peers {
    pub list: Vec<Peer>,
    pub me: DirAddr,
}

impl Peers {
    pub fn new(me: DirAddr, servers: &[DirAddr]) -> Self {
        let mut list: Vec<Peer> = Vec::new();
        for &a in servers.iter().chain(std::iter::once(&me)) {
            if !list.iter().any(|p| p.addr == a) {
                list.push(Peer::new(a));
            }
        }
        list.sort_by_key(|p| p.addr);
        Peers { list, me }
    }

    pub fn get(&self, a: DirAddr) -> Option<&Peer> {
        self.list
            .binary_search_by_key(&a, |p| p.addr)
            .ok()
            .map(|i| &self.list[i])
    }

    pub fn get_mut(&mut self, a: DirAddr) -> Option<&mut Peer> {
        match self.list.binary_search_by_key(&a, |p| p.addr) {
            Ok(i) => Some(&mut self.list[i]),
            Err(_) => None,
        }
    }

    /// Find or add a record; true if it was added.
    pub fn get_or_add(&mut self, a: DirAddr) -> (&mut Peer, bool) {
        match self.list.binary_search_by_key(&a, |p| p.addr) {
            Ok(i) => (&mut self.list[i], false),
            Err(i) => {
                self.list.insert(i, Peer::new(a));
                (&mut self.list[i], true)
            }
        }
    }

    /// Steps forward from us to `a` (1..n-1), counting every record.
    pub fn distance(&self, a: DirAddr) -> usize {
        let n = self.list.len();
        let me = self.index(self.me);
        let i = self.index(a);
        (i + n - me) % n
    }

    fn index(&self, a: DirAddr) -> usize {
        match self.list.binary_search_by_key(&a, |p| p.addr) {
            Ok(i) | Err(i) => i,
        }
    }

    /// `a` sits between us and `b` going rightwards (closer on the right).
    pub fn closer_right(&self, a: DirAddr, b: DirAddr) -> bool {
        self.distance(a) < self.distance(b)
    }

    /// `a` sits between `b` and us going rightwards from `b` (closer on the left).
    pub fn closer_left(&self, a: DirAddr, b: DirAddr) -> bool {
        self.distance(a) > self.distance(b)
    }

    /// Other directors in forward order starting at our successor.
    pub fn forward(&self) -> Vec<DirAddr> {
        let n = self.list.len();
        let me = self.index(self.me);
        (1..n).map(|k| self.list[(me + k) % n].addr).collect()
    }

    /// First non-removed director after us, ignoring failure marks.
    pub fn preferred_right(&self) -> Option<DirAddr> {
        self.forward()
            .into_iter()
            .find(|a| !self.get(*a).is_some_and(|p| p.removed))
    }

    /// Whether any other non-removed director exists.
    pub fn has_others(&self) -> bool {
        self.preferred_right().is_some()
    }

    /// Whether a failure mark makes the connect procedure skip `p` now.
    pub fn skip(p: &Peer, now: u64) -> bool {
        let recent = |t: Option<u64>| t.is_some_and(|t| t + FAILURE_SKIP_SECS > now);
        p.removed || recent(p.last_network_failure) || recent(p.last_protocol_failure)
    }
}
