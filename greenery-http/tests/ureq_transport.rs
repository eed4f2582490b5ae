//! ureq's own transport API over greenery's `TcpStream`, with no `patch`
//! feature needed: a connector of a few dozen lines, which ureq accepts
//! because greenery's sockets are `Send` (ureq's transports must be
//! `Send + Sync`; a `Mutex` reached through `get_mut`, which takes no lock,
//! supplies the `Sync`).
//!
//! 200 requests through a pool of 20 green threads are 20 at a time in
//! flight on one client thread; then one agent, shared by two OS threads with
//! a hub each, hands its pooled connections from one hub to the other.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use greenery::net::{ServerThreads, TcpStream};
use greenery_http::Server;
use greenery_http::http::{Request, Response};
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport,
};

/// Connects with greenery's `TcpStream`: the connect, and every read and
/// write after it, park the green thread instead of the OS thread.
#[derive(Debug)]
struct GreenConnector {
    /// The local ports of the connections made, to count them.
    connections: Arc<Mutex<Vec<u16>>>,
}

impl<In: Transport> Connector<In> for GreenConnector {
    type Out = GreenTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<GreenTransport>, ureq::Error> {
        assert!(chained.is_none(), "the only connector of its agent");
        let addrs: Vec<SocketAddr> = details.addrs.iter().copied().collect();
        let stream = TcpStream::connect(&addrs[..])?;
        stream.set_nodelay(true)?;
        self.connections.lock().unwrap().push(stream.local_addr()?.port());
        let buffers =
            LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        Ok(Some(GreenTransport { stream: Mutex::new(stream), buffers }))
    }
}

#[derive(Debug)]
struct GreenTransport {
    stream: Mutex<TcpStream>,
    buffers: LazyBuffers,
}

/// A timed-out read or write as ureq's timeout error, naming which timeout.
fn timed_out(err: std::io::Error, timeout: &NextTimeout) -> ureq::Error {
    if err.kind() == std::io::ErrorKind::TimedOut { ureq::Error::Timeout(timeout.reason) } else { err.into() }
}

impl Transport for GreenTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        let stream = self.stream.get_mut().unwrap();
        stream.set_write_timeout(timeout.not_zero().map(|after| *after))?;
        stream.write_all(&self.buffers.output()[..amount]).map_err(|err| timed_out(err, &timeout))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        let stream = self.stream.get_mut().unwrap();
        stream.set_read_timeout(timeout.not_zero().map(|after| *after))?;
        let read = stream.read(self.buffers.input_append_buf()).map_err(|err| timed_out(err, &timeout))?;
        self.buffers.input_appended(read);
        Ok(read > 0)
    }

    /// Whether a pooled connection may be used again: nothing to read on it
    /// (no early bytes, no end of stream), asked without waiting.
    fn is_open(&mut self) -> bool {
        let stream = self.stream.get_mut().unwrap();
        let mut probe = libc::pollfd { fd: stream.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, for the call's duration; timeout 0.
        let ready = unsafe { libc::poll(&mut probe, 1, 0) };
        ready == 0
    }
}

/// A greenery-http server on a hub of its own thread, whose handler takes
/// 50 ms and counts the requests in flight at once.
struct SlowServer {
    servers: ServerThreads,
    most: Arc<AtomicUsize>,
}

impl SlowServer {
    fn start() -> SlowServer {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let servers = {
            let most = most.clone();
            ServerThreads::start(1, "127.0.0.1:0", move |_hub, listener| {
                let (in_flight, most) = (in_flight.clone(), most.clone());
                Server::new(listener, move |request: Request<greenery_http::Body>| {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    greenery::sleep(Duration::from_millis(50));
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    Response::new(format!("hello {}", request.uri().path()))
                })
            })
            .unwrap()
        };
        SlowServer { servers, most }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.servers.local_addr())
    }

    fn stop(self) {
        self.servers.stop(Duration::from_secs(1));
        self.servers.wait().unwrap();
    }
}

fn agent(connections: &Arc<Mutex<Vec<u16>>>) -> ureq::Agent {
    let config = ureq::Agent::config_builder().max_idle_connections_per_host(64).build();
    ureq::Agent::with_parts(
        config,
        GreenConnector { connections: connections.clone() },
        DefaultResolver::default(),
    )
}

fn get(agent: &ureq::Agent, url: &str) -> String {
    agent.get(url).call().unwrap().body_mut().read_to_string().unwrap()
}

#[test]
fn a_pool_of_green_threads_has_its_ureq_requests_in_flight_together() {
    let server = SlowServer::start();
    let connections = Arc::new(Mutex::new(Vec::new()));
    let agent = agent(&connections);
    let pool = greenery::sync::Pool::new(20);
    let bodies: Vec<String> = pool
        .imap(
            {
                let (agent, server_url) = (agent.clone(), server.url("/"));
                move |n| get(&agent, &format!("{server_url}{n}"))
            },
            0..200,
        )
        .map(|body| body.unwrap())
        .collect();
    let expected: Vec<String> = (0..200).map(|n| format!("hello /{n}")).collect();
    assert_eq!(bodies, expected);
    assert_eq!(
        server.most.load(Ordering::SeqCst),
        20,
        "the 20 green threads' requests were in flight together"
    );
    // Connections were kept and used again: at most one per green thread.
    let made = connections.lock().unwrap().len();
    assert!((20..=20 * 2).contains(&made), "{made} connections for 200 requests");
    server.stop();
}

#[test]
fn pooled_connections_move_between_the_hubs_of_two_threads() {
    let server = SlowServer::start();
    let connections = Arc::new(Mutex::new(Vec::new()));
    let agent = agent(&connections);
    // Ten green threads on this thread's hub make ten connections, which
    // the agent keeps.
    let first: Vec<_> = (0..10)
        .map(|n| {
            let (agent, url) = (agent.clone(), server.url(&format!("/a{n}")));
            greenery::spawn(move || get(&agent, &url))
        })
        .collect();
    for (n, request) in first.into_iter().enumerate() {
        assert_eq!(request.get().unwrap(), format!("hello /a{n}"));
    }
    assert_eq!(connections.lock().unwrap().len(), 10);
    // Another OS thread, with its own hub, takes them from the agent's pool:
    // each moves to that hub on its first read or write there.
    let other = {
        let (agent, server_urls) =
            (agent.clone(), (0..10).map(|n| server.url(&format!("/b{n}"))).collect::<Vec<_>>());
        std::thread::spawn(move || {
            let requests: Vec<_> = server_urls
                .into_iter()
                .map(|url| {
                    let agent = agent.clone();
                    greenery::spawn(move || get(&agent, &url))
                })
                .collect();
            requests.into_iter().map(|request| request.get().unwrap()).collect::<Vec<String>>()
        })
    };
    let bodies = greenery::hub::spawn_blocking(move || other.join().unwrap()).unwrap();
    let expected: Vec<String> = (0..10).map(|n| format!("hello /b{n}")).collect();
    assert_eq!(bodies, expected);
    assert_eq!(connections.lock().unwrap().len(), 10, "the other thread's hub used the same ten connections");
    // And back on this thread's hub.
    let again: Vec<_> = (0..10)
        .map(|n| {
            let (agent, url) = (agent.clone(), server.url(&format!("/c{n}")));
            greenery::spawn(move || get(&agent, &url))
        })
        .collect();
    for (n, request) in again.into_iter().enumerate() {
        assert_eq!(request.get().unwrap(), format!("hello /c{n}"));
    }
    assert_eq!(connections.lock().unwrap().len(), 10);
    server.stop();
}
