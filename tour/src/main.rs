//! A tour of greenery: runs the examples of the document greenery grew from and
//! prints what they print, then shows the rest of the library at work,
//! greenery-http included.
//!
//! ```text
//! cargo run --release -p greenery-tour
//! ```

use greenery::{Builder, Co, Coroutine, CoroutineResult, Generator};

#[path = "../../greenery/examples/seed/mod.rs"]
mod seed;

fn section(title: &str) {
    println!("\n== {title} ==\n");
}

fn main() {
    section("Generators: the seed's `echo` (send, throw, close)");
    seed::echo_session(&seed::Printer::stdout());

    section("Generators: the seed's consumer/producer pipeline");
    let path = seed::sample_file();
    println!("(reading {})", path.file_name().unwrap().to_string_lossy());
    if let Err(err) = seed::pipeline(&path, &seed::Printer::stdout()) {
        println!("pipeline failed: {err}");
    }

    section("Stackful: yield from any depth of plain function calls");
    stackful();

    section("yield from: delegation with a return value (PEP 380), and of any iterable");
    delegation();

    section("The coroutine primitive under it all");
    primitive();

    section("Greenlets: switch to anyone, parents, throw, kill");
    greenlets();

    section("The hub: green threads, a timeout, a pool");
    hub();

    section("The seed's pipeline again, with green threads and a channel");
    if let Err(err) = seed::green_pipeline(&path, &seed::Printer::stdout()) {
        println!("green pipeline failed: {err}");
    }

    section("Sockets: an echo server and its clients, all green threads on one thread");
    sockets();

    section("Child processes and signals, cooperatively");
    processes();

    section("Blocking code, cooperative: std's own sleeps and sockets (the `patch` feature)");
    patched();

    section("Futures in green threads, green threads in futures");
    futures();

    section("Every core: a hub per thread, channels between them");
    every_core();

    section("HTTP: greenery-http serves a few requests to itself");
    http();

    section("Stacks");
    stacks();
}

fn http() {
    use greenery_http::http::{Request, Response, StatusCode};
    use greenery_http::{Body, RequestExt, ResponseBody, Server};
    use std::io::{BufRead, BufReader, Read, Write};
    use std::time::Duration;

    // Handlers are plain blocking code, each request in a green thread.
    let server = Server::bind("127.0.0.1:0", |request: Request<Body>| {
        match request.uri().path() {
            "/hello" => Response::new(ResponseBody::from("Hello, World!")),
            "/echo" => {
                let body = request.into_body().into_bytes().unwrap_or_default();
                Response::new(ResponseBody::from(body))
            }
            "/count" => {
                // Streamed in chunks as it is written, pausing between them.
                let to: u32 = request
                    .query_pairs()
                    .find(|(key, _)| key == "to")
                    .and_then(|(_, value)| value.parse().ok())
                    .unwrap_or(3);
                Response::new(ResponseBody::stream(move |out| {
                    for n in 1..=to {
                        write!(out, "{n} ")?;
                        out.flush()?;
                        greenery::sleep(Duration::from_millis(5));
                    }
                    Ok(())
                }))
            }
            _ => {
                let mut response = Response::new(ResponseBody::from("not here"));
                *response.status_mut() = StatusCode::NOT_FOUND;
                response
            }
        }
    })
    .expect("a local port");
    server.start().expect("the server starts");
    println!("serving on {}", server.local_addr());

    // One keep-alive connection, three requests written at once
    // (pipelined); the answers come back in order.
    let client = greenery::net::TcpStream::connect(server.local_addr()).expect("the server is up");
    (&client)
        .write_all(
            b"GET /hello HTTP/1.1\r\nHost: tour\r\n\r\n\
              POST /echo HTTP/1.1\r\nHost: tour\r\nTransfer-Encoding: chunked\r\n\r\n\
              6\r\ngreen \r\n7\r\nthreads\r\n0\r\n\r\n\
              GET /count?to=4 HTTP/1.1\r\nHost: tour\r\n\r\n",
        )
        .expect("a write");
    let mut replies = BufReader::new(&client);
    for _ in 0..3 {
        let (status, body) = read_response(&mut replies);
        println!("{status:<24} {body:?}");
    }
    println!("{} connection(s) open, {} idle", server.connections(), server.idle_connections());
    // The idle connection waits with no green thread until the next request.
    (&client)
        .write_all(b"GET /missing HTTP/1.1\r\nHost: tour\r\nConnection: close\r\n\r\n")
        .expect("a write");
    let (status, body) = read_response(&mut replies);
    println!("{status:<24} {body:?}");
    let mut rest = Vec::new();
    replies.read_to_end(&mut rest).expect("the close");
    println!("then the server closed the connection, as asked");
    server.stop(Duration::from_secs(5)).expect("the server stops");
    println!("server stopped");

    /// Reads one response: its status line and its body (with
    /// Content-Length or chunked).
    fn read_response(reader: &mut impl BufRead) -> (String, String) {
        fn line(reader: &mut impl BufRead) -> String {
            let mut line = String::new();
            reader.read_line(&mut line).expect("a line");
            line.trim_end().to_owned()
        }
        let status = line(reader);
        let (mut length, mut chunked) = (0, false);
        loop {
            let header = line(reader);
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(": ").expect("a header");
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().expect("a length");
            }
            chunked |= name.eq_ignore_ascii_case("transfer-encoding") && value == "chunked";
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let size = usize::from_str_radix(&line(reader), 16).expect("a chunk size");
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk).expect("a chunk");
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            body.resize(length, 0);
            reader.read_exact(&mut body).expect("the body");
        }
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

fn processes() {
    use greenery::process::{Command, Stdio};
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    // Three children at once: each wait parks only its green thread.
    let started = Instant::now();
    let children: Vec<_> = [3, 2, 1]
        .into_iter()
        .map(|n| {
            greenery::spawn(move || {
                let script = format!("sleep 0.{n}; echo child {n} done");
                Command::new("sh").args(["-c", &script]).output()
            })
        })
        .collect();
    for child in children {
        let output = child.get().expect("the green thread finishes").expect("sh runs");
        print!("{}", String::from_utf8_lossy(&output.stdout));
    }
    println!(
        "three children of 0.3 s, 0.2 s and 0.1 s took {:.1} s together",
        started.elapsed().as_secs_f64()
    );

    // Piped stdin and stdout, written and read by two green threads.
    let mut tr = Command::new("tr")
        .args(["a-z", "A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("tr runs");
    let stdin = tr.stdin.take().expect("piped");
    let writer = greenery::spawn(move || {
        (&stdin).write_all(b"shout this\n").expect("a write");
    });
    let mut shouted = String::new();
    tr.stdout.take().expect("piped").read_to_string(&mut shouted).expect("a read");
    writer.join().expect("the writer finishes");
    print!("tr says: {shouted}");
    tr.wait().expect("tr exits");

    // A timeout kills a child that takes too long.
    match Command::new("sleep").arg("5").timeout(Some(Duration::from_millis(100))).status() {
        Err(err) => println!("sleep 5 with a 100 ms timeout: {err}"),
        Ok(status) => println!("sleep 5 finished early?! {status}"),
    }

    // A signal handler is a green thread: it may block, allocate, lock.
    let got = std::rc::Rc::new(greenery::sync::Event::new());
    let set = got.clone();
    let handler = greenery::signal::signal_handler(libc::SIGUSR1, move || {
        println!("SIGUSR1 handled in a green thread");
        set.set();
    })
    .expect("SIGUSR1 can be handled");
    Command::new("kill").args(["-USR1", &std::process::id().to_string()]).status().expect("kill runs");
    got.wait().expect("the handler runs");
    handler.cancel();
}

fn sockets() {
    use greenery::net::{TcpListener, TcpStream};
    use std::io::{Read, Write};

    // The echo_server example's loop: a green thread per connection.
    let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
    let addr = listener.local_addr().expect("a bound address");
    let server = greenery::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.expect("a connection");
            greenery::spawn(move || {
                stream.set_nodelay(true).expect("TCP_NODELAY");
                let mut buf = [0; 1024];
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    if stream.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    println!("echo server listening on {addr}");
    // Three clients at once, each a few round trips.
    let clients: Vec<_> = ["alpha", "beta", "gamma"]
        .into_iter()
        .map(|name| {
            greenery::spawn(move || {
                let mut stream = TcpStream::connect(addr).expect("the server is up");
                let mut echoes = Vec::new();
                for round in 1..=3 {
                    let message = format!("{name} #{round}");
                    stream.write_all(message.as_bytes()).expect("a write");
                    let mut back = vec![0; message.len()];
                    stream.read_exact(&mut back).expect("the echo");
                    echoes.push(String::from_utf8(back).expect("text"));
                }
                echoes
            })
        })
        .collect();
    for client in clients {
        println!("client got back {:?}", client.get().expect("the client finishes"));
    }
    server.kill().expect("the server stops");
    println!("server stopped (killed at its accept)");
}

fn hub() {
    use std::time::Duration;

    // Three green threads sleep at once: about 30 ms in all, not 60.
    let workers: Vec<_> = (1..=3u64)
        .map(|n| {
            greenery::spawn(move || {
                greenery::sleep(Duration::from_millis(10 * n));
                n * n
            })
        })
        .collect();
    greenery::hub::joinall(&workers, None, false).unwrap();
    // The handles stay usable: look at each outcome without taking it.
    let squares: Vec<u64> = workers.iter().map(|w| *w.value().unwrap()).collect();
    println!("spawn/join: squares {squares:?} from 3 green threads sleeping 10, 20, 30 ms at once");
    let first = &workers[0];
    println!(
        "  worker {}: ready {}, dead {}, successful {}, exception {:?}",
        first.id(),
        first.is_ready(),
        first.is_dead(),
        first.is_successful(),
        first.exception().map(|err| err.to_string())
    );

    // A kill is a normal end, as in gevent; a link runs at the next turn of the hub.
    let sleeper = greenery::spawn(|| greenery::sleep(Duration::from_secs(10)));
    sleeper.link_value(|value| {
        println!("  link_value: the sleeper ended with no value (killed): {}", value.is_none())
    });
    greenery::yield_now();
    sleeper.kill().unwrap();
    println!(
        "killed the sleeper: successful {}, killed {}, exception {:?}",
        sleeper.is_successful(),
        sleeper.is_killed(),
        sleeper.exception().map(|err| err.to_string())
    );

    // A timeout unwinds the slow call at its sleep.
    let outcome = greenery::with_timeout(Duration::from_millis(20), || {
        greenery::sleep(Duration::from_secs(10));
        "finished"
    });
    println!("with_timeout(20 ms) around a 10 s sleep: {outcome:?}");

    // A pool runs at most 2 at a time; map keeps the input order.
    let pool = greenery::sync::Pool::new(2);
    let lengths = pool.map(
        |word: &'static str| {
            greenery::sleep(Duration::from_millis(word.len() as u64));
            word.len()
        },
        ["green", "threads", "on", "a", "hub"],
    );
    let lengths: Vec<usize> = lengths.into_iter().map(Result::unwrap).collect();
    println!("Pool::new(2).map(len) over 5 words: {lengths:?}");
}

fn stackful() {
    /// Flattens nested lists; the recursion is ordinary Rust.
    enum Nested {
        Leaf(i32),
        List(Vec<Nested>),
    }
    fn flatten(item: &Nested, co: &Co<(), i32>) {
        match item {
            Nested::Leaf(n) => co.yield_(*n),
            Nested::List(items) => items.iter().for_each(|item| flatten(item, co)),
        }
    }
    use Nested::{Leaf, List};
    let nested = List(vec![Leaf(1), List(vec![Leaf(2), List(vec![Leaf(3), Leaf(4)])]), Leaf(5)]);
    let numbers: Vec<i32> = Generator::new(move |co, ()| flatten(&nested, co)).collect();
    println!("flatten([1, [2, [3, 4]], 5]) = {numbers:?}");
}

fn delegation() {
    /// Yields its words and returns how many there were.
    fn words(text: &'static str) -> Generator<(), &'static str, usize> {
        Generator::new(move |co, ()| text.split_whitespace().inspect(|word| co.yield_(*word)).count())
    }
    let mut sentence = Generator::new(|co, ()| {
        let first = co.yield_from(words("stackful coroutines"));
        let second = co.yield_from(words("for the rest of us"));
        first + second
    });
    let yielded: Vec<_> = sentence.by_ref().collect();
    println!("yielded  {yielded:?}");
    println!("returned {:?} (the sum of what each `yield_from` returned)", sentence.return_value());

    // Any iterable (Python's `yield from ["a", "list"]`), and a sub-generator
    // borrowed, to look at it afterwards.
    let mut mixed = Generator::new(|co, ()| {
        co.yield_from_iter(["from", "a", "list"]);
        let mut rest = words("then a generator");
        let count = co.yield_from(&mut rest);
        format!("{count} words from the generator, now {:?}", rest.state())
    });
    let yielded: Vec<_> = mixed.by_ref().collect();
    println!("yielded  {yielded:?}");
    println!("returned {:?}", mixed.return_value().unwrap_or_default());
}

fn primitive() {
    let mut running_total = Builder::new()
        .name("running-total")
        .coroutine(|yielder: &greenery::Yielder<u64, u64>, mut n: u64| {
            let mut total = 0;
            while n != 0 {
                total += n;
                n = yielder.suspend(total);
            }
            total
        })
        .expect("a stack");
    for n in [5, 10, 20, 0] {
        match running_total.resume(n) {
            CoroutineResult::Yield(total) => println!("resume({n:>2}) -> Yield({total})"),
            CoroutineResult::Return(total) => println!("resume({n:>2}) -> Return({total})"),
        }
    }
    let caught = std::panic::catch_unwind(|| {
        let mut failing = Coroutine::<(), (), ()>::new(|_, ()| std::panic::resume_unwind(Box::new("boom")));
        failing.resume(());
    });
    let payload = caught.unwrap_err();
    println!("a panic inside a coroutine reaches its resumer: {:?}", payload.downcast_ref::<&str>().unwrap());
}

fn stacks() {
    println!(
        "default stack size: {} KiB (GREENERY_STACK_SIZE or Builder::stack_size change it)",
        greenery::stack::default_size() / 1024
    );
    println!("finished stacks kept per thread for reuse: {}", greenery::stack::pool_limit());
    let small = Builder::new().stack_size(16 * 1024).generator(|co, ()| co.yield_(1u32)).unwrap();
    println!("a generator on a 16 KiB stack gets {} KiB", small.stack_size().unwrap() / 1024);
    println!(
        "overflowing a stack prints the coroutine's name and size, then aborts (see tests/stack_overflow.rs)"
    );
}

fn greenlets() {
    use greenery::greenlet::{self, Greenlet, GreenletExit, Thrown};

    let main = greenlet::getcurrent();

    // Ping-pong: each side switches straight to the other.
    // `switch_as` switches and takes the value that comes back as the type
    // expected.
    let to_main = main.clone();
    let pong = Greenlet::new(move |ball| {
        let mut n: u32 = ball.cast().expect("a number");
        loop {
            println!("  pong got {n}, sends {}", n + 1);
            n = to_main.switch_as(n + 1).expect("a number");
        }
    });
    let mut n = 0u32;
    for _ in 0..3 {
        n = pong.switch_as(n).expect("a number");
        println!("main got {n}");
    }

    // A body's return value goes to its parent (here: main).
    let child = Greenlet::new(|work| format!("{} done", work.cast::<u32>().expect("a number")));
    let result: String = child.switch_as(42u32).expect("a string");
    println!("the child returned {result:?} to its parent; dead: {}", child.is_dead());

    // A switch to a dead greenlet goes to its parent, here main, so the value
    // comes straight back; `switch_as` names both types when it is not the one expected.
    let err = child.switch_as::<u32>("late").unwrap_err();
    println!("switch_as::<u32> to the dead child: {err}");

    // throw: raised at the target's pending switch, as an error value.
    let to_main = main.clone();
    let catcher = Greenlet::new(move |_| match to_main.switch(()) {
        Err(Thrown(value)) => format!("caught {:?}", value.downcast::<&str>().unwrap_or("?")),
        Ok(_) => "nothing was thrown".to_string(),
    });
    catcher.switch(()).expect("nothing thrown"); // runs up to its switch back to main
    let caught = catcher.throw("oops").expect("nothing thrown").cast::<String>().expect("a string");
    println!("throw: the catcher {caught} and returned");

    // kill: the target unwinds from its pending switch; destructors run.
    struct Cleanup;
    impl Drop for Cleanup {
        fn drop(&mut self) {
            println!("  the victim's destructor ran");
        }
    }
    let to_main = main.clone();
    let victim = Greenlet::new(move |_| {
        let _cleanup = Cleanup;
        let _ = to_main.switch(());
        println!("  (never printed)");
    });
    victim.switch(()).expect("nothing thrown");
    let exit = victim.kill().expect("nothing thrown");
    println!(
        "kill: the parent received {:?}; dead: {}",
        exit.downcast::<GreenletExit>().ok(),
        victim.is_dead()
    );
}

fn patched() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    println!("hooks active: {}", greenery::patch::is_active());
    // Plain std::thread::sleep in five green threads: with `patch`, each
    // parks its green thread, and the five sleep at once.
    let started = Instant::now();
    let sleepers: Vec<_> =
        (0..5).map(|_| greenery::spawn(|| std::thread::sleep(Duration::from_millis(100)))).collect();
    greenery::hub::joinall(&sleepers, None, true).unwrap();
    let took = started.elapsed();
    println!("5 green threads x std::thread::sleep(100 ms): {} ms in all", took.as_millis() / 10 * 10);
    // std's TcpListener and TcpStream, an echo between two green threads.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = greenery::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut line = [0u8; 12];
        stream.read_exact(&mut line).unwrap();
        stream.write_all(&line).unwrap();
    });
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client.write_all(b"std, on hub!").unwrap();
    let mut echo = [0u8; 12];
    client.read_exact(&mut echo).unwrap();
    server.get().unwrap();
    println!("std::net::TcpStream echo: {:?}", String::from_utf8_lossy(&echo));
    println!("(stock clients work the same way: see the redis_fanout example)");
}

fn futures() {
    use std::time::Duration;

    // Any future, awaited from a green thread.
    let value = greenery::block_on(async { 6 * 7 });
    println!("greenery::block_on(async {{ 6 * 7 }}) = {value}");
    // Green code awaited from async code.
    let hub = greenery::hub::Handle::current();
    let green = greenery::block_on(async move {
        hub.spawn(|| {
            greenery::sleep(Duration::from_millis(1));
            "green code, awaited"
        })
        .await
        .unwrap()
    });
    println!("Handle::spawn(..).await = {green:?}");
    // A tokio-based future, on the shared tokio runtime.
    let slept = greenery::tokio::run(async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        "tokio's timer fired"
    });
    println!("greenery::tokio::run(tokio::time::sleep(..)) : {slept}");
}

fn every_core() {
    use greenery::sync::mpsc;

    let (tx, rx) = mpsc::unbounded::<(usize, u64)>();
    let hubs = greenery::hub::cores().clamp(1, 2);
    greenery::hub::run_on(hubs, |i| {
        // Each hub runs green threads of its own and reports over a channel
        // whose ends are Send.
        let workers: Vec<_> = (0..100u64).map(|n| greenery::spawn(move || n)).collect();
        let sum: u64 = workers.into_iter().map(|worker| worker.get().unwrap()).sum();
        tx.send((i, sum)).unwrap();
    });
    drop(tx);
    let mut reports: Vec<_> = rx.iter().collect();
    reports.sort();
    for (hub, sum) in reports {
        println!("hub {hub}: 100 green threads summed to {sum}");
    }
}
