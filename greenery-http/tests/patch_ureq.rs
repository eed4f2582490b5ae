//! The stock `ureq` client (synchronous) in green threads, against
//! greenery-http: with greenery's `patch` feature, 200 requests through a
//! pool of 20 green threads are 20 at a time in flight; without it, each
//! blocks its hub, and they go one at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use greenery::net::ServerThreads;
use greenery_http::Server;
use greenery_http::http::{Request, Response};

#[test]
fn ureq_requests_from_a_pool_of_green_threads() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    // The server on a hub of its own (another thread), so that a client
    // that blocks its hub does not block the server too.
    let servers = {
        let (in_flight, most) = (in_flight.clone(), most.clone());
        ServerThreads::start(1, "127.0.0.1:0", move |_hub, listener| {
            let (in_flight, most) = (in_flight.clone(), most.clone());
            Server::new(listener, move |_request: Request<greenery_http::Body>| {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                greenery::sleep(Duration::from_millis(50));
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Response::new("slow hello")
            })
        })
        .unwrap()
    };
    let url = format!("http://{}/", servers.local_addr());
    // greenery's `patch` feature may be on without greenery-http's (Cargo
    // unifies features across a workspace): ask greenery.
    let patched = greenery::patch::is_active();
    let requests = if patched { 200 } else { 5 };
    let pool = greenery::sync::Pool::new(20);
    let bodies: Vec<String> = pool
        .imap(
            move |_| {
                let mut response = ureq::get(&url).call().unwrap();
                response.body_mut().read_to_string().unwrap()
            },
            0..requests,
        )
        .map(|body| body.unwrap())
        .collect();
    assert_eq!(bodies.len(), requests);
    assert!(bodies.iter().all(|body| body == "slow hello"));
    let most = most.load(Ordering::SeqCst);
    if patched {
        assert_eq!(most, 20, "the pool's 20 green threads had their requests in flight together");
    } else {
        assert_eq!(most, 1, "without `patch`, each request blocks the client's hub");
    }
    servers.stop(Duration::from_secs(1));
    servers.wait().unwrap();
}
