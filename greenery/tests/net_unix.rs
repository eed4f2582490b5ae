//! Unix sockets on the hub: streams through a listener, pairs, datagrams.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use greenery::net::{UnixDatagram, UnixListener, UnixStream};

const SHORT: Duration = Duration::from_millis(20);

/// A fresh directory for this test's socket files, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("greenery-net-unix-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_listener_serves_many_clients_at_once() {
    let dir = TempDir::new("listener");
    let path = dir.0.join("echo.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = greenery::spawn(move || {
        for stream in listener.incoming().take(20) {
            let mut stream = stream.unwrap();
            greenery::spawn(move || {
                let mut buf = [0; 64];
                let n = stream.read(&mut buf).unwrap();
                stream.write_all(&buf[..n]).unwrap();
            });
        }
    });
    let clients: Vec<_> = (0..20u32)
        .map(|i| {
            let path = path.clone();
            greenery::spawn(move || {
                let mut stream = UnixStream::connect(&path).unwrap();
                stream.write_all(format!("client {i}").as_bytes()).unwrap();
                let mut reply = String::new();
                stream.read_to_string(&mut reply).unwrap();
                reply
            })
        })
        .collect();
    for (i, client) in clients.into_iter().enumerate() {
        assert_eq!(client.get().unwrap(), format!("client {i}"));
    }
    server.get().unwrap();
}

#[test]
fn a_pair_reads_with_a_timeout_and_sees_end_of_file() {
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_read_timeout(Some(SHORT)).unwrap();
    assert_eq!((&a).read(&mut [0; 4]).unwrap_err().kind(), io::ErrorKind::TimedOut);
    b.write_all(b"last words").unwrap();
    drop(b);
    let mut all = String::new();
    (&a).read_to_string(&mut all).unwrap();
    assert_eq!(all, "last words");
}

#[test]
fn connecting_to_a_missing_path_fails() {
    let dir = TempDir::new("missing");
    let err = UnixStream::connect(dir.0.join("nobody.sock")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

#[test]
fn datagrams_go_to_bound_paths_and_pairs() {
    let dir = TempDir::new("datagram");
    let path = dir.0.join("dgram.sock");
    let server = UnixDatagram::bind(&path).unwrap();
    let receiver = greenery::spawn(move || {
        let mut buf = [0; 16];
        let len = server.recv(&mut buf).unwrap();
        buf[..len].to_vec()
    });
    greenery::yield_now();
    let client = UnixDatagram::unbound().unwrap();
    client.send_to(b"hello", &path).unwrap();
    assert_eq!(receiver.get().unwrap(), b"hello");

    let (a, b) = UnixDatagram::pair().unwrap();
    b.set_read_timeout(Some(SHORT)).unwrap();
    assert_eq!(b.recv(&mut [0; 4]).unwrap_err().kind(), io::ErrorKind::TimedOut);
    a.send(b"pair").unwrap();
    let mut buf = [0; 4];
    assert_eq!(b.recv(&mut buf).unwrap(), 4);
    assert_eq!(&buf, b"pair");
}
