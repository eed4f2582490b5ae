//! sprig
#![allow(dead_code)]
mod arch;
