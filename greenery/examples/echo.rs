//! The seed document's `echo` generator and its REPL session: `send`,
//! `throw` and `close` on a generator.
//!
//! ```text
//! cargo run --example echo
//! ```

#[path = "seed/mod.rs"]
mod seed;

fn main() {
    seed::echo_session(&seed::Printer::stdout());
}
