//! Picking loopback addresses whose ports are free, so parallel instances never collide.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Tries this many random addresses before giving up.
const ATTEMPTS: usize = 200;

/// A random address in 127.64.0.0/10 on which every port in `ports` can be bound right now.
///
/// The range keeps clear of 127.0.0.x and 127.0.1.x, which the lab scripts use.
pub fn free_ip(ports: &[u16]) -> std::io::Result<Ipv4Addr> {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id()) << 32;
    let mut rng = SmallRng::seed_from_u64(seed);
    for _ in 0..ATTEMPTS {
        let ip = Ipv4Addr::new(
            127,
            rng.gen_range(64..128),
            rng.gen(),
            rng.gen_range(1..255),
        );
        if ports
            .iter()
            .all(|&p| TcpListener::bind(SocketAddrV4::new(ip, p)).is_ok())
        {
            return Ok(ip);
        }
    }
    Err(crate::err(format!(
        "no free loopback address for ports {ports:?}"
    )))
}
