//! The seed document's consumer/producer pipeline again, with green threads:
//! a producer green thread reads a file and hands each line over a
//! rendezvous channel to a consumer green thread, which prints it
//! upper-cased. Compare `pipeline.rs`, where generators pass the lines.
//!
//! ```text
//! cargo run --example green_pipeline [-- FILE]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

#[path = "seed/mod.rs"]
mod seed;

fn main() -> ExitCode {
    let path = std::env::args_os().nth(1).map(PathBuf::from).unwrap_or_else(seed::sample_file);
    match seed::green_pipeline(&path, &seed::Printer::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("green_pipeline: cannot read {}: {err}", path.display());
            ExitCode::FAILURE
        }
    }
}
