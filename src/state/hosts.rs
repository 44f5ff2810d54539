//! The backend ("mail host") table.
//!
//! Replaces the host list of Dovecot's `src/director/mail-host.c` (`user-directory.md` §1,
//! `ring-protocol.md` §1.2 and §7.1). Hosts live in a slab so that user entries can name
//! their host by a small stable index ([`HostId`]); a second vector keeps the slab indexes
//! in Dovecot's listing order (by IP: IPv4 before IPv6, then address bytes), which is
//! `IpAddr`'s own `Ord`.

use super::Tag;
use std::net::IpAddr;

/// Index of a host in the table; stable while the host exists, reused after removal.
pub type HostId = u32;

/// Index of a tag in creation order; tags are never deleted, so it is stable forever.
pub type TagId = u32;

/// One backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailHost {
    /// The backend's address (the key).
    pub ip: IpAddr,
    /// DNS name it was configured by, if any.
    pub hostname: Option<String>,
    /// Its tag (`""` = default).
    pub tag: Tag,
    /// Number of ring points; 0 = no new users.
    pub vhost_count: u32,
    /// Down hosts get no new users but keep existing ones.
    pub down: bool,
    /// Unix time of the last up/down flip, 0 = never.
    pub last_updown_change: u64,
    /// User entries currently pointing at this host.
    pub user_count: u32,
    /// Changed by us since the last completed ring sync (never set when stand-alone).
    pub desynced: bool,
    pub(crate) tag_id: TagId,
}

impl MailHost {
    /// A new up host with 100 vhosts, as configured hosts and HOST-SET create them.
    pub(crate) fn new(ip: IpAddr, hostname: Option<String>, tag: Tag, tag_id: TagId) -> Self {
        MailHost {
            ip,
            hostname,
            tag,
            vhost_count: DEFAULT_VHOST_COUNT,
            down: false,
            last_updown_change: 0,
            user_count: 0,
            desynced: false,
            tag_id,
        }
    }

    /// The tag's index in creation order.
    pub fn tag_id(&self) -> TagId {
        self.tag_id
    }
}

/// Dovecot's `VHOST_MULTIPLIER`: the vhost count of a new host.
pub const DEFAULT_VHOST_COUNT: u32 = 100;

/// The largest vhost count doveadm may set (`vhost count too large` above it).
pub const MAX_VHOST_COUNT: u32 = 1000;

/// All hosts, addressable by [`HostId`] and iterable in IP order.
#[derive(Clone, Debug, Default)]
pub struct HostTable {
    slots: Vec<Option<MailHost>>,
    free: Vec<HostId>,
    /// Slab indexes sorted by IP.
    sorted: Vec<HostId>,
}

impl HostTable {
    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether there are no hosts.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The host with this address.
    pub fn find(&self, ip: IpAddr) -> Option<HostId> {
        self.sorted
            .binary_search_by(|&id| self.get(id).ip.cmp(&ip))
            .ok()
            .map(|pos| self.sorted[pos])
    }

    /// The host behind an id handed out by this table.
    ///
    /// Panics on a stale id: ids are only kept by user entries, which are removed together
    /// with their host.
    pub fn get(&self, id: HostId) -> &MailHost {
        self.slots[id as usize]
            .as_ref()
            .expect("host id refers to a live host")
    }

    /// Mutable access, same contract as [`HostTable::get`].
    pub fn get_mut(&mut self, id: HostId) -> &mut MailHost {
        self.slots[id as usize]
            .as_mut()
            .expect("host id refers to a live host")
    }

    /// Whether `id` names a live host.
    pub fn contains(&self, id: HostId) -> bool {
        matches!(self.slots.get(id as usize), Some(Some(_)))
    }

    /// Add a host whose IP is not in the table yet.
    pub fn insert(&mut self, host: MailHost) -> HostId {
        let pos = match self
            .sorted
            .binary_search_by(|&id| self.get(id).ip.cmp(&host.ip))
        {
            Ok(_) => panic!("HostTable::insert of a duplicate IP"),
            Err(pos) => pos,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(host);
                id
            }
            None => {
                self.slots.push(Some(host));
                (self.slots.len() - 1) as HostId
            }
        };
        self.sorted.insert(pos, id);
        id
    }

    /// Remove a host; its users must already be gone.
    pub fn remove(&mut self, id: HostId) -> MailHost {
        let host = self.slots[id as usize]
            .take()
            .expect("host id refers to a live host");
        self.sorted.retain(|&other| other != id);
        self.free.push(id);
        host
    }

    /// Ids in IP order.
    pub fn ids(&self) -> &[HostId] {
        &self.sorted
    }

    /// Hosts in IP order.
    pub fn iter(&self) -> impl Iterator<Item = &MailHost> + '_ {
        self.sorted.iter().map(|&id| self.get(id))
    }

    /// Ids and hosts in IP order.
    pub fn iter_with_ids(&self) -> impl Iterator<Item = (HostId, &MailHost)> + '_ {
        self.sorted.iter().map(|&id| (id, self.get(id)))
    }

    /// `hosts_hash` of `ring-protocol.md` §7.1, compared between directors in SYNC.
    pub fn hosts_hash(&self) -> u32 {
        hosts_hash(self.iter())
    }
}

/// `hosts_hash` over hosts given in IP order (`ring-protocol.md` §7.1).
pub fn hosts_hash<'a>(hosts: impl IntoIterator<Item = &'a MailHost>) -> u32 {
    let mut c = 0u32;
    for host in hosts {
        let num = u32::from(host.down) ^ host.vhost_count;
        c = crc32_more(c, &num.to_le_bytes());
        let key = match host.ip {
            IpAddr::V4(v4) => v4.octets(),
            IpAddr::V6(v6) => ipv6_hash(&v6.octets()).to_le_bytes(),
        };
        c = crc32_more(c, &key);
        c = crc32_more(c, host.tag.as_bytes());
    }
    if c == 0 {
        1
    } else {
        c
    }
}

/// Dovecot's `net_ip_hash()` for IPv6 (an ELF-style hash over the 16 bytes).
fn ipv6_hash(bytes: &[u8; 16]) -> u32 {
    let mut h = 0u32;
    for &b in bytes {
        h = (h << 4).wrapping_add(u32::from(b));
        let g = h & 0xF000_0000;
        if g != 0 {
            h ^= g >> 24;
            h ^= g;
        }
    }
    h
}

/// zlib's `crc32(c, data)`: reflected CRC-32, polynomial 0xEDB88320, continued from `c`.
fn crc32_more(c: u32, data: &[u8]) -> u32 {
    let mut crc = !c;
    for &b in data {
        crc = CRC32_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// Byte-at-a-time table of the reflected CRC-32 polynomial: a ring director recomputes
/// `hosts_hash` after every ring line, and bit by bit it was 8 % of a handshake's time.
const CRC32_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn host(ip: &str, down: bool, tag: &str) -> MailHost {
        let mut h = MailHost::new(ip.parse().unwrap(), None, Tag::from(tag), 0);
        h.down = down;
        h
    }

    #[test]
    fn crc32_check_value() {
        // The standard CRC-32 check value.
        assert_eq!(crc32_more(0, b"123456789"), 0xCBF4_3926);
        // Continuing a CRC over a second piece is the CRC of the whole.
        assert_eq!(crc32_more(crc32_more(0, b"1234"), b"56789"), 0xCBF4_3926);
        assert_eq!(crc32_more(0, b""), 0);
    }

    /// `ring-protocol.md` §7.1 vectors (the first four [verified] on real directors).
    #[test]
    fn hosts_hash_vectors() {
        assert_eq!(hosts_hash([]), 1);
        assert_eq!(hosts_hash([&host("10.0.0.1", false, "")]), 691642842);
        assert_eq!(
            hosts_hash([&host("10.0.0.1", false, ""), &host("10.0.0.2", false, "")]),
            697653630
        );
        assert_eq!(
            hosts_hash([&host("10.0.0.1", true, ""), &host("10.0.0.2", false, "")]),
            2281556207
        );
        assert_eq!(hosts_hash([&host("10.0.0.1", false, "a")]), 2392374312);
        assert_eq!(hosts_hash([&host("::1", false, "")]), 2302613069);
        let three = [
            host("127.0.1.1", false, ""),
            host("127.0.1.2", false, ""),
            host("127.0.1.3", false, ""),
        ];
        assert_eq!(hosts_hash(&three), 1410458694);
    }

    #[test]
    fn table_keeps_ip_order_and_reuses_slots() {
        let mut t = HostTable::default();
        let b = t.insert(host("10.0.0.2", false, ""));
        let v6 = t.insert(host("::1", false, ""));
        let a = t.insert(host("10.0.0.1", false, ""));
        let order: Vec<String> = t.iter().map(|h| h.ip.to_string()).collect();
        assert_eq!(order, ["10.0.0.1", "10.0.0.2", "::1"]);
        assert_eq!(t.find("10.0.0.2".parse().unwrap()), Some(b));
        t.remove(b);
        assert_eq!(t.find("10.0.0.2".parse().unwrap()), None);
        let c = t.insert(host("10.0.0.9", false, ""));
        assert_eq!(c, b, "freed slot is reused");
        assert_eq!(t.ids(), &[a, c, v6]);
    }
}
