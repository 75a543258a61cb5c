//! A TCP proxy that stops passing the server's bytes after a given amount, leaving the client
//! hanging mid-stream: a dump that is deterministically "still running" (a stalled network, a
//! server stuck on a lock), for tests of watchdogs and of what is visible while a dump runs.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Forwards 127.0.0.1:`port` to 127.0.0.1:`upstream`. Per connection, server-to-client traffic
/// stops after `stall_after` bytes (the connection stays open); client-to-server traffic always
/// flows. Drop closes everything.
pub struct StallProxy {
    pub port: u16,
    stalled: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl StallProxy {
    pub fn start(upstream: u16, stall_after: u64) -> StallProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let stalled = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let sockets = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (stalled, stop, sockets) = (stalled.clone(), stop.clone(), sockets.clone());
            thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                        continue;
                    };
                    let mut held = sockets.lock().unwrap();
                    for s in [&client, &server] {
                        held.push(s.try_clone().expect("clone socket"));
                    }
                    drop(held);
                    let (c2, s2) = (
                        client.try_clone().expect("clone"),
                        server.try_clone().expect("clone"),
                    );
                    thread::spawn(move || pump(c2, s2, u64::MAX, None));
                    let (stalled, stop) = (stalled.clone(), stop.clone());
                    thread::spawn(move || pump(server, client, stall_after, Some((stalled, stop))));
                }
            })
        };
        StallProxy {
            port,
            stalled,
            stop,
            sockets,
            acceptor: Some(acceptor),
        }
    }

    /// Whether some connection has reached `stall_after` and is now held.
    pub fn stalled(&self) -> bool {
        self.stalled.load(Ordering::SeqCst)
    }
}

/// Copies `from` to `to`, up to `limit` bytes; then, if `stall` is given, flags it and holds the
/// connection (reading nothing more) until the proxy stops.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    limit: u64,
    stall: Option<(Arc<AtomicBool>, Arc<AtomicBool>)>,
) {
    let mut buf = [0u8; 16 * 1024];
    let mut passed = 0u64;
    while passed < limit {
        let want = buf
            .len()
            .min(usize::try_from(limit - passed).unwrap_or(usize::MAX));
        match from.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                passed += n as u64;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if let (true, Some((stalled, stop))) = (passed >= limit, stall) {
        stalled.store(true, Ordering::SeqCst);
        while !stop.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for s in self.sockets.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        // Wake the acceptor with one last connection.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}
