//! Ports for things a test must name before they listen.
//!
//! A service the tests start listens on `127.0.0.1:0` (both listeners, the main and
//! the internal one) and says where: an in-process one through `Application::port`
//! and `Application::metrics_port`, a child process in its log
//! ([`super::ServiceProcess::port`], [`super::ServiceProcess::metrics_port`]). Picking a free port and handing it over is a
//! race: the port is free again between the pick and the bind, and two processes
//! once drew the same one. What is here is for the few cases that cannot wait to
//! learn the port.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};

/// A port on 127.0.0.1 that nothing listened on a moment ago, and that is released
/// again. Only for an address that must refuse connections: something given this
/// port to listen on could lose it to another process (use `127.0.0.1:0`, or
/// [`reserve_port`] when the port must be known first).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port on 127.0.0.1 for a service whose address must be known before it starts
/// (its public URL names the port). See [`reserve`].
pub fn reserve_port() -> u16 {
    reserve(0).unwrap()
}

/// Reserves `port` on 127.0.0.1 (0: one the system picks) and returns it. The port
/// is left in TIME_WAIT for about 60 s: meanwhile the system hands it out to no one
/// (neither `bind` to port 0 nor an outgoing connection takes a port in that state),
/// while a listener that sets `SO_REUSEADDR` can still bind it, as Rust's
/// `TcpListener::bind` (so the service), chromedriver and RabbitMQ do. Whatever is
/// to listen there must bind it within that minute.
pub fn reserve(port: u16) -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
    let address: SocketAddr = listener.local_addr()?;
    let client = TcpStream::connect(address)?;
    let (accepted, _) = listener.accept()?;
    // The side that closes first keeps the port in TIME_WAIT: the accepted
    // connection, whose local port is the listener's.
    drop(accepted);
    drop(client);
    Ok(address.port())
}
