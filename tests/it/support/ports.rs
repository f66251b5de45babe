//! Ports for things a test must name before they listen.

use std::net::{Ipv4Addr, TcpListener};

/// A port on 127.0.0.1 that nothing listened on a moment ago, and that is released
/// again.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
