use std::error::Error;
use std::fmt;
use std::io;

/// A coroutine stack could not be allocated.
///
/// The message names the limit that was hit and how to raise it:
///
/// ```text
/// cannot map a 256 KiB coroutine stack: the process has 64530 memory mappings
/// and vm.max_map_count allows 65530 (stacks are mapped in slabs, one mapping
/// for up to 64, and greenery leaves 1024 for the rest of the program); raise it
/// with `sysctl -w vm.max_map_count=262144`, or run fewer coroutines at once
/// ```
///
/// It converts into an [`io::Error`] (of kind [`io::ErrorKind::OutOfMemory`]
/// for the memory limits) for code that works in `io::Result`.
pub struct StackError {
    // Boxed: errors are rare, and this keeps `Result<Coroutine, StackError>`
    // as small as the coroutine.
    inner: Box<Inner>,
}

struct Inner {
    limit: Limit,
    size: usize,
}

#[derive(Debug)]
pub(crate) enum Limit {
    /// `vm.max_map_count` is exhausted, or would be but for the `reserve`
    /// greenery keeps for the rest of the program.
    /// `slabs`: whether stacks were being mapped in slabs (one mapping for
    /// many) or one guarded mapping pair each.
    MapCount { count: u64, max: u64, reserve: u64, slabs: bool },
    /// `RLIMIT_AS` (`ulimit -v`) is exhausted.
    AddressSpace { bytes: u64 },
    /// Strict overcommit (`vm.overcommit_memory = 2`) refused the mapping.
    Overcommit,
    /// ENOMEM with no limit to blame.
    Memory(io::Error),
    /// The requested size cannot hold the coroutine's own data.
    TooSmall { needed: usize },
    /// Any other error from the kernel.
    Os(io::Error),
}

impl StackError {
    pub(crate) fn new(limit: Limit, size: usize) -> Self {
        StackError { inner: Box::new(Inner { limit, size }) }
    }

    /// The usable size of the stack that could not be allocated, in bytes.
    pub fn stack_size(&self) -> usize {
        self.inner.size
    }

    /// Whether a memory limit of the system or the process was hit (as
    /// opposed to a stack size too small for the coroutine).
    pub fn is_os_limit(&self) -> bool {
        !matches!(self.inner.limit, Limit::TooSmall { .. })
    }
}

/// Formats a byte count the way people write stack sizes.
pub(crate) struct Size(pub(crate) u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const KIB: u64 = 1024;
        const MIB: u64 = 1024 * 1024;
        match self.0 {
            n if n >= MIB && n % MIB == 0 => write!(f, "{} MiB", n / MIB),
            n if n >= KIB && n % KIB == 0 => write!(f, "{} KiB", n / KIB),
            n => write!(f, "{n} bytes"),
        }
    }
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let size = Size(self.inner.size as u64);
        match &self.inner.limit {
            Limit::MapCount { count, max, reserve, slabs } => write!(
                f,
                "cannot map a {size} coroutine stack: the process has {count} memory mappings \
                 and vm.max_map_count allows {max} ({}, and greenery leaves {reserve} for the \
                 rest of the program); raise it with `sysctl -w vm.max_map_count=262144`, or \
                 run fewer coroutines at once",
                if *slabs {
                    "stacks are mapped in slabs, one mapping for up to 64"
                } else {
                    "each guarded stack takes 2: this kernel has no guard regions (Linux 6.13+) \
                     or GREENERY_STACK_GUARD=mprotect is set"
                }
            ),
            Limit::AddressSpace { bytes } => write!(
                f,
                "cannot map a {size} coroutine stack: the address-space limit RLIMIT_AS \
                 (`ulimit -v`) of {} is reached; raise it (`ulimit -v unlimited`), give \
                 coroutines smaller stacks, or run fewer at once",
                Size(*bytes)
            ),
            Limit::Overcommit => write!(
                f,
                "cannot map a {size} coroutine stack: the kernel's strict overcommit policy \
                 (vm.overcommit_memory = 2) refused it; raise vm.overcommit_ratio, use \
                 smaller stacks, or run fewer coroutines at once"
            ),
            Limit::Memory(err) => write!(f, "cannot map a {size} coroutine stack: out of memory ({err})"),
            Limit::TooSmall { needed } => write!(
                f,
                "a {size} stack is too small for this coroutine: its closure and bookkeeping \
                 need {needed} bytes plus room to run; ask for a larger stack"
            ),
            Limit::Os(err) => write!(f, "cannot map a {size} coroutine stack: {err}"),
        }
    }
}

impl fmt::Debug for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackError")
            .field("limit", &self.inner.limit)
            .field("size", &self.inner.size)
            .field("message", &format_args!("{self}"))
            .finish()
    }
}

impl Error for StackError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.inner.limit {
            Limit::Memory(err) | Limit::Os(err) => Some(err),
            _ => None,
        }
    }
}

impl From<StackError> for io::Error {
    fn from(err: StackError) -> io::Error {
        let kind = match err.inner.limit {
            Limit::TooSmall { .. } => io::ErrorKind::InvalidInput,
            Limit::Os(ref e) => e.kind(),
            _ => io::ErrorKind::OutOfMemory,
        };
        io::Error::new(kind, err)
    }
}
