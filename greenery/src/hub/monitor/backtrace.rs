//! Turning a [`Sample`] into a backtrace, on the monitor's thread: unwinding
//! the copied stack with the loaded modules' DWARF unwind tables
//! (`.eh_frame`, indexed by `.eh_frame_hdr`), with `framehop`, then naming
//! each frame from the debug info, with `backtrace::resolve`.
//!
//! The modules' tables are read from this process's memory inside
//! `dl_iterate_phdr`'s callback, whose lock keeps them from being unloaded
//! while they are copied; the unwinder then works on the copies only.

use std::ffi::CStr;
use std::fmt::Write as _;
use std::ops::Range;

use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder};
use libc::{c_int, c_void};

use super::capture::{Registers, Sample};

/// The most frames listed.
const MAX_FRAMES: usize = 64;

/// Frames where greenery's or std's plumbing starts: where a green thread's
/// body, a greenlet, or a thread's main function is called from. They and
/// the frames below them are left out.
const PLUMBING: &[&str] = &[
    "greenery::hub::thread::make::{{closure}}",
    "greenery::greenlet::entry",
    "__rust_begin_short_backtrace",
    "std::rt::lang_start",
];

/// The frames of `catch_unwind`, which the plumbing calls bodies through:
/// left out too when they come right before it.
const CATCH_UNWIND: &[&str] = &[
    "core::panic::unwind_safe::AssertUnwindSafe",
    "std::panicking::catch_unwind",
    "std::panic::catch_unwind",
    "__rust_try",
];

/// A loaded module and copies of its unwind tables.
struct Loaded {
    name: String,
    /// Its mapped range, and the address its own addresses are relative to.
    range: Range<u64>,
    base: u64,
    eh_frame_hdr: (Range<u64>, Vec<u8>),
    eh_frame: (Range<u64>, Vec<u8>),
}

/// One named frame (an inlined call is a frame of its own).
struct Frame {
    name: Option<String>,
    at: Option<String>,
    address: u64,
    module: Option<usize>,
}

/// The backtrace of `sample`, one frame per line, innermost first.
pub(super) fn describe(sample: &Sample) -> String {
    let modules = loaded_modules();
    let mut frames = Vec::new();
    for address in unwind(&modules, sample) {
        let lookup = address.address_for_lookup();
        let named = frames.len();
        backtrace::resolve(lookup as *mut c_void, |symbol| {
            let at = symbol.filename().zip(symbol.lineno()).map(|(file, line)| match symbol.colno() {
                Some(column) => format!("{}:{line}:{column}", file.display()),
                None => format!("{}:{line}", file.display()),
            });
            let name = symbol.name().map(|name| format!("{name:#}"));
            frames.push(Frame { name, at, address: address.address(), module: None });
        });
        if frames.len() == named {
            let module = modules.iter().position(|module| module.range.contains(&lookup));
            frames.push(Frame { name: None, at: None, address: address.address(), module });
        }
    }
    let is = |frame: &Frame, names: &[&str]| {
        frame.name.as_deref().is_some_and(|name| names.iter().any(|marker| name.contains(marker)))
    };
    let mut end = frames.iter().position(|frame| is(frame, PLUMBING)).unwrap_or(frames.len());
    while end > 1 && is(&frames[end - 1], CATCH_UNWIND) {
        end -= 1;
    }
    let mut text = String::new();
    for (index, frame) in frames[..end].iter().enumerate() {
        let _ = match (&frame.name, frame.module) {
            (Some(name), _) => writeln!(text, "{index:4}: {name}"),
            (None, Some(module)) => {
                writeln!(text, "{index:4}: {:#x} (in {})", frame.address, modules[module].name)
            }
            (None, None) => writeln!(text, "{index:4}: {:#x}", frame.address),
        };
        if let Some(at) = &frame.at {
            let _ = writeln!(text, "             at {at}");
        }
    }
    if let Some(err) = &sample.stack_error {
        let _ = writeln!(text, "      (only the innermost frame: its stack could not be read: {err})");
    }
    text
}

/// The return addresses of the sample's frames, innermost first.
fn unwind(modules: &[Loaded], sample: &Sample) -> Vec<FrameAddress> {
    let mut unwinder = framehop::UnwinderNative::<Vec<u8>, framehop::MayAllocateDuringUnwind>::new();
    for module in modules {
        let info = ExplicitModuleSectionInfo {
            base_svma: 0,
            eh_frame_hdr_svma: Some(module.eh_frame_hdr.0.clone()),
            eh_frame_hdr: Some(module.eh_frame_hdr.1.clone()),
            eh_frame_svma: Some(module.eh_frame.0.clone()),
            eh_frame: Some(module.eh_frame.1.clone()),
            ..Default::default()
        };
        unwinder.add_module(Module::new(module.name.clone(), module.range.clone(), module.base, info));
    }
    let mut cache = framehop::CacheNative::<framehop::MayAllocateDuringUnwind>::new();
    let sp = sample.registers.sp;
    let stack = &sample.stack;
    let mut read_stack = |address: u64| {
        let offset = usize::try_from(address.checked_sub(sp).ok_or(())?).map_err(|_| ())?;
        let bytes = stack.get(offset..offset.checked_add(8).ok_or(())?).ok_or(())?;
        Ok(u64::from_ne_bytes(bytes.try_into().map_err(|_| ())?))
    };
    let registers = unwind_registers(&unwinder, sample.registers);
    let mut frames = unwinder.iter_frames(sample.registers.pc, registers, &mut cache, &mut read_stack);
    let mut addresses = Vec::new();
    while addresses.len() < MAX_FRAMES
        && let Ok(Some(frame)) = frames.next()
    {
        addresses.push(frame);
    }
    addresses
}

#[cfg(target_arch = "x86_64")]
fn unwind_registers<U>(_: &U, registers: Registers) -> framehop::UnwindRegsNative {
    framehop::x86_64::UnwindRegsX86_64::new(registers.pc, registers.sp, registers.fp)
}

#[cfg(target_arch = "aarch64")]
fn unwind_registers<D: std::ops::Deref<Target = [u8]>, P: framehop::AllocationPolicy>(
    unwinder: &framehop::UnwinderNative<D, P>,
    registers: Registers,
) -> framehop::UnwindRegsNative {
    // Return addresses may carry a pointer-authentication code in the bits
    // above the highest code address.
    let mask = framehop::aarch64::PtrAuthMask::from_max_known_address(unwinder.max_known_code_address());
    framehop::aarch64::UnwindRegsAarch64::new_with_ptr_auth_mask(
        mask,
        registers.lr,
        registers.sp,
        registers.fp,
    )
}

/// The loaded modules that have unwind tables, with copies of them.
fn loaded_modules() -> Vec<Loaded> {
    let mut modules: Vec<Loaded> = Vec::new();
    // SAFETY: the callback matches dl_iterate_phdr's signature and gets our
    // vector, which outlives the call, as its data.
    unsafe { libc::dl_iterate_phdr(Some(each_module), (&raw mut modules).cast()) };
    modules.sort_by_key(|module| module.range.start);
    modules
}

/// `dl_iterate_phdr`'s callback: copies one module's unwind tables.
///
/// # Safety
///
/// `info` must be what `dl_iterate_phdr` passes, and `data` our vector.
unsafe extern "C" fn each_module(info: *mut libc::dl_phdr_info, _: usize, data: *mut c_void) -> c_int {
    // SAFETY: guaranteed by the caller.
    let (info, modules) = unsafe { (&*info, &mut *data.cast::<Vec<Loaded>>()) };
    // SAFETY: `dlpi_phdr` points to `dlpi_phnum` program headers.
    let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
    let base = info.dlpi_addr;
    let loads = || headers.iter().filter(|header| header.p_type == libc::PT_LOAD);
    let (Some(start), Some(end)) = (
        loads().map(|header| header.p_vaddr).min(),
        loads().map(|header| header.p_vaddr + header.p_memsz).max(),
    ) else {
        return 0;
    };
    let Some(hdr) = headers.iter().find(|header| header.p_type == libc::PT_GNU_EH_FRAME) else { return 0 };
    // SAFETY: the segment is mapped readable while the module is loaded,
    // which the loader's lock, held during this callback, guarantees.
    let hdr_bytes = unsafe { mapped(base + hdr.p_vaddr, hdr.p_memsz) }.to_vec();
    let Some(eh_frame_start) = eh_frame_address(&hdr_bytes, hdr.p_vaddr) else { return 0 };
    // `.eh_frame` ends at its zero terminator, within its segment.
    let Some(segment) =
        loads().find(|header| (header.p_vaddr..header.p_vaddr + header.p_filesz).contains(&eh_frame_start))
    else {
        return 0;
    };
    let segment_end = segment.p_vaddr + segment.p_filesz;
    // SAFETY: as above; the range lies in a loaded segment.
    let rest = unsafe { mapped(base + eh_frame_start, segment_end - eh_frame_start) };
    let eh_frame = rest[..eh_frame_len(rest)].to_vec();
    let name = if info.dlpi_name.is_null() {
        String::new()
    } else {
        // SAFETY: a non-null `dlpi_name` is a C string.
        unsafe { CStr::from_ptr(info.dlpi_name) }.to_string_lossy().into_owned()
    };
    let name = if name.is_empty() { "the program".to_owned() } else { name };
    let eh_frame_end = eh_frame_start + eh_frame.len() as u64;
    modules.push(Loaded {
        name,
        range: base + start..base + end,
        base,
        eh_frame_hdr: (hdr.p_vaddr..hdr.p_vaddr + hdr.p_memsz, hdr_bytes),
        eh_frame: (eh_frame_start..eh_frame_end, eh_frame),
    });
    0
}

/// `len` bytes of this process's memory at `address`.
///
/// # Safety
///
/// They must be mapped readable, and stay so while the slice is used.
unsafe fn mapped<'a>(address: u64, len: u64) -> &'a [u8] {
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts(address as *const u8, len as usize) }
}

/// The module-relative address of `.eh_frame`, from the header at
/// module-relative address `hdr_address` (LSB's `.eh_frame_hdr`: version 1,
/// then the pointer's encoding, then the pointer).
fn eh_frame_address(hdr: &[u8], hdr_address: u64) -> Option<u64> {
    const PCREL: u8 = 0x10;
    const SDATA4: u8 = 0x0b;
    const UDATA4: u8 = 0x03;
    const SDATA8: u8 = 0x0c;
    const UDATA8: u8 = 0x04;
    if hdr.first() != Some(&1) {
        return None;
    }
    let encoding = *hdr.get(1)?;
    let field = hdr.get(4..)?;
    let value = match encoding & 0x0f {
        SDATA4 => i64::from(i32::from_ne_bytes(field.get(..4)?.try_into().ok()?)),
        UDATA4 => i64::from(u32::from_ne_bytes(field.get(..4)?.try_into().ok()?)),
        SDATA8 | UDATA8 => i64::from_ne_bytes(field.get(..8)?.try_into().ok()?),
        _ => return None,
    };
    match encoding & 0x70 {
        0 => u64::try_from(value).ok(),
        PCREL => (hdr_address + 4).checked_add_signed(value),
        _ => None,
    }
}

/// The length of the `.eh_frame` at the start of `bytes`: its records up to
/// and including the zero terminator (or all of `bytes`).
fn eh_frame_len(bytes: &[u8]) -> usize {
    let mut at = 0;
    while let Some(field) = bytes.get(at..at + 4) {
        let len = u32::from_ne_bytes(field.try_into().expect("4 bytes"));
        let next = match len {
            0 => return at + 4,
            u32::MAX => bytes
                .get(at + 4..at + 12)
                .and_then(|field| {
                    usize::try_from(u64::from_ne_bytes(field.try_into().expect("8 bytes"))).ok()
                })
                .and_then(|len| (at + 12).checked_add(len)),
            len => (at + 4).checked_add(len as usize),
        };
        match next {
            Some(next) if next <= bytes.len() => at = next,
            _ => break,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eh_frame_records_end_at_the_terminator() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&8u32.to_ne_bytes());
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        bytes.extend_from_slice(&[0xff; 16]); // what follows in the segment
        assert_eq!(eh_frame_len(&bytes), 16);
    }

    #[test]
    fn eh_frame_pointer_relative_to_the_header() {
        // version 1, pcrel|sdata4, then the pointer: 0x100 bytes past it.
        let mut hdr = vec![1, 0x1b, 0x03, 0x3b];
        hdr.extend_from_slice(&0x100i32.to_ne_bytes());
        assert_eq!(eh_frame_address(&hdr, 0x2000), Some(0x2000 + 4 + 0x100));
    }
}
