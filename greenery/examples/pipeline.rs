//! The seed document's consumer/producer pipeline: a generator reads a file
//! line by line and a second one prints each line upper-cased.
//!
//! ```text
//! cargo run --example pipeline [-- FILE]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

#[path = "seed/mod.rs"]
mod seed;

fn main() -> ExitCode {
    let path = std::env::args_os().nth(1).map(PathBuf::from).unwrap_or_else(seed::sample_file);
    match seed::pipeline(&path, &seed::Printer::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pipeline: cannot read {}: {err}", path.display());
            ExitCode::FAILURE
        }
    }
}
