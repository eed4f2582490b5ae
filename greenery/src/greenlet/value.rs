//! [`Value`]: what a greenlet switch carries, and [`WrongType`], what taking
//! it out as the wrong type gives back.

use std::any::{self, Any, TypeId};
use std::error::Error;
use std::fmt;
use std::marker::PhantomData;
use std::mem::{self, MaybeUninit};
use std::ptr;

use crate::arch::{Word, Words};

/// A value passed by [`switch`](super::Greenlet::switch), returned by a
/// greenlet's body, or [`throw`](super::Greenlet::throw)n: any `'static`
/// type, checked when it is taken out with [`downcast`](Self::downcast) or
/// [`cast`](Self::cast) (or by [`switch_as`](super::Greenlet::switch_as),
/// which switches and takes the value out in one call).
///
/// Greenlets switch to each other freely, so the type a switch carries is not
/// known until run time (Python's `switch(*args)` carries any objects).
/// `Value` keeps that freedom without boxing the common cases: an empty value
/// (`()`, what a bare `switch` sends) and small plain values (up to a word,
/// without a destructor: integers, `char`s, `&'static` references, small
/// `Copy` structs) travel inline, in registers across a switch; anything else
/// is boxed.
///
/// ```
/// use greenery::greenlet::Value;
///
/// let n = Value::new(42u64);
/// assert!(n.is::<u64>());
/// assert_eq!(n.downcast::<u64>().ok(), Some(42));
///
/// let text = Value::new(String::from("hello"));
/// assert_eq!(text.type_name(), "alloc::string::String");
/// let text = text.downcast::<u64>().unwrap_err(); // handed back
/// let not_a_number = text.cast::<u64>().unwrap_err(); // names both types
/// assert_eq!(
///     not_a_number.to_string(),
///     "expected a value of type `u64`, found one of type `alloc::string::String`"
/// );
/// let text = not_a_number.into_value(); // handed back too
/// assert_eq!(text.downcast::<String>().ok().as_deref(), Some("hello"));
///
/// assert!(Value::new(()).is_empty());
/// ```
pub struct Value {
    // A plain struct rather than an enum, so that a value crossing a switch
    // stays in registers all the way: the compiler can split a struct of
    // scalars, but not an enum whose variants share their storage.
    //
    //   tag          words
    //   TAG_EMPTY    -
    //   TAG_INLINE   a `&'static TypeInfo`, then the value's bytes
    //   TAG_BOXED    a `*mut dyn Boxed` from `Box::into_raw`
    tag: usize,
    words: Words,
    /// A boxed value need not be `Send`, so neither is this.
    _not_send: PhantomData<*mut ()>,
}

// The tags are the bits 4 and 5 of a switch's control word, already in
// place, so that the receiver need not shift them out.
const TAG_EMPTY: usize = 0;
const TAG_INLINE: usize = 1 << 4;
const TAG_BOXED: usize = 2 << 4;
/// The bits of a control word that a value's tag takes.
pub(super) const TAG_BITS: usize = 3 << 4;

const fn fits_inline<T: 'static>() -> bool {
    mem::size_of::<T>() <= mem::size_of::<Word>()
        && mem::align_of::<T>() <= mem::align_of::<Word>()
        && !mem::needs_drop::<T>()
}

// A fat pointer takes the two words.
const _: () = assert!(mem::size_of::<*mut dyn Boxed>() == 2 * mem::size_of::<Word>());

/// A type's id and name, for an inline value's first word.
///
/// A type check compares `id` with [`type_id`] by address: both point at a
/// 16-byte constant holding the id, which the linker stores once however
/// many codegen units use it (equal plain constants of this size share a
/// mergeable section). The `TypeInfo` itself, which holds a pointer, is not
/// merged like that, so its own address would not do.
struct TypeInfo {
    id: &'static TypeId,
    /// Called only to report a mismatch, so a plain function pointer will
    /// do (`type_name` is not a `const fn`).
    name: fn() -> &'static str,
}

/// `T`'s type id, as a `'static` constant: its address identifies the type
/// in one word (if two addresses differ, the ids themselves are compared).
#[inline(always)]
fn type_id<T: 'static>() -> &'static TypeId {
    const { &TypeId::of::<T>() }
}

/// `T`'s [`TypeInfo`], as a `'static` constant.
#[inline(always)]
fn type_info<T: 'static>() -> &'static TypeInfo {
    const { &TypeInfo { id: &TypeId::of::<T>(), name: any::type_name::<T> } }
}

/// What a boxed value is kept as: any `'static` type, which can also name
/// itself (`dyn Any` cannot).
trait Boxed: Any {
    fn type_name(&self) -> &'static str;
}

impl<T: Any> Boxed for T {
    fn type_name(&self) -> &'static str {
        any::type_name::<T>()
    }
}

/// Splits a two-word value into words.
#[inline(always)]
fn split<T>(value: T) -> (Word, Word) {
    debug_assert_eq!(mem::size_of::<T>(), 2 * mem::size_of::<Word>());
    let mut words = MaybeUninit::<[Word; 2]>::uninit();
    // SAFETY: `T` is two words in size (asserted above for the two types
    // used); any bytes are valid for `MaybeUninit` words.
    unsafe {
        ptr::write(words.as_mut_ptr().cast::<T>(), value);
        let [a, b] = words.assume_init();
        (a, b)
    }
}

/// Joins words made by [`split`] back into the value.
///
/// # Safety
///
/// The words must come from `split::<T>`.
#[inline(always)]
unsafe fn join<T>(a: Word, b: Word) -> T {
    let words = [a, b];
    // SAFETY: guaranteed by the caller.
    unsafe { ptr::read(words.as_ptr().cast::<T>()) }
}

/// Whether the first word of an inline value names `T`'s type.
///
/// # Safety
///
/// `word` must be the first word of an inline value: a `&'static TypeInfo`.
#[inline(always)]
unsafe fn holds_type<T: 'static>(word: Word) -> bool {
    // SAFETY: guaranteed by the caller.
    let id = unsafe { &*(word.assume_init() as *const TypeInfo) }.id;
    // The same id may sit at two addresses (if the linker did not merge
    // them): then compare the ids themselves.
    ptr::eq(id, type_id::<T>()) || slow_type_check::<T>(id)
}

#[cold]
#[inline(never)]
fn slow_type_check<T: 'static>(id: &TypeId) -> bool {
    *id == TypeId::of::<T>()
}

impl Value {
    /// The empty value (Python's `switch()` with no arguments).
    pub const fn empty() -> Value {
        Value { tag: TAG_EMPTY, words: (Word::uninit(), Word::uninit()), _not_send: PhantomData }
    }

    /// Wraps `value`. A `Value` is not wrapped again, and `()` becomes the
    /// empty value.
    #[inline(always)]
    pub fn new<T: 'static>(value: T) -> Value {
        if TypeId::of::<T>() == TypeId::of::<Value>() {
            let mut slot = Some(value);
            let slot: &mut dyn Any = &mut slot;
            return slot.downcast_mut::<Option<Value>>().and_then(Option::take).unwrap_or_default();
        }
        if TypeId::of::<T>() == TypeId::of::<()>() {
            return Value::empty();
        }
        if fits_inline::<T>() {
            let mut data = Word::uninit();
            // SAFETY: `T` fits in the word and is no more aligned; it has no
            // destructor, so a bitwise copy owns it fully.
            unsafe { ptr::write(data.as_mut_ptr().cast::<T>(), value) };
            let info = Word::new(type_info::<T>() as *const TypeInfo as usize);
            Value { tag: TAG_INLINE, words: (info, data), _not_send: PhantomData }
        } else {
            let boxed: Box<dyn Boxed> = Box::new(value);
            Value { tag: TAG_BOXED, words: split(Box::into_raw(boxed)), _not_send: PhantomData }
        }
    }

    /// The boxed value, for a value tagged `TAG_BOXED`.
    ///
    /// # Safety
    ///
    /// The value must be boxed.
    unsafe fn boxed(&self) -> &dyn Boxed {
        // SAFETY: guaranteed by the caller: the words are a pointer from
        // `Box::into_raw`, owned by this value.
        unsafe { &*join::<*mut dyn Boxed>(self.words.0, self.words.1) }
    }

    /// The boxed value as `dyn Any`, for a value tagged `TAG_BOXED`.
    ///
    /// # Safety
    ///
    /// As for [`boxed`](Self::boxed).
    unsafe fn boxed_any(&self) -> &dyn Any {
        // SAFETY: guaranteed by the caller.
        unsafe { self.boxed() }
    }

    /// Whether an inline value (tagged `TAG_INLINE`) is a `T`.
    #[inline(always)]
    fn inline_is<T: 'static>(&self) -> bool {
        debug_assert_eq!(self.tag, TAG_INLINE);
        // SAFETY: an inline value's first word is its type id.
        unsafe { holds_type::<T>(self.words.0) }
    }

    /// Whether this is the empty value.
    pub fn is_empty(&self) -> bool {
        self.tag == TAG_EMPTY
    }

    /// Whether the value is a `T` (the empty value is a `()`).
    #[inline(always)]
    pub fn is<T: 'static>(&self) -> bool {
        match self.tag {
            TAG_EMPTY => TypeId::of::<T>() == TypeId::of::<()>(),
            TAG_INLINE => self.inline_is::<T>(),
            // SAFETY: the tag says it is boxed.
            _ => unsafe { self.boxed_any() }.is::<T>(),
        }
    }

    /// The name of the type inside, as [`std::any::type_name`] gives it
    /// (`"()"` for the empty value): for messages, since such names are
    /// neither unique nor stable.
    ///
    /// ```
    /// use greenery::greenlet::Value;
    ///
    /// assert_eq!(Value::new(7u8).type_name(), "u8");
    /// assert_eq!(Value::new(vec![1u8]).type_name(), "alloc::vec::Vec<u8>");
    /// assert_eq!(Value::empty().type_name(), "()");
    /// ```
    pub fn type_name(&self) -> &'static str {
        match self.tag {
            TAG_EMPTY => "()",
            TAG_INLINE => {
                // SAFETY: an inline value's first word is a `&'static
                // TypeInfo`.
                let info = unsafe { &*(self.words.0.assume_init() as *const TypeInfo) };
                (info.name)()
            }
            // SAFETY: the tag says it is boxed.
            _ => unsafe { self.boxed() }.type_name(),
        }
    }

    /// Takes the `T` out, or hands the value back if it is not a `T` (as
    /// `Box<dyn Any>::downcast` does).
    ///
    /// [`cast`](Self::cast) does the same with an error that names both
    /// types, for `?` and `unwrap`.
    #[inline(always)]
    pub fn downcast<T: 'static>(self) -> Result<T, Value> {
        match self.tag {
            TAG_INLINE if self.inline_is::<T>() => {
                // SAFETY: the type ids match, so the data word holds a `T`,
                // written by `new`; `T` has no destructor, so forgetting the
                // value (which owns nothing else) loses nothing.
                Ok(unsafe { ptr::read(self.words.1.as_ptr().cast::<T>()) })
            }
            TAG_EMPTY if TypeId::of::<T>() == TypeId::of::<()>() => {
                let mut unit = Some(());
                let unit: &mut dyn Any = &mut unit;
                Ok(unit.downcast_mut::<Option<T>>().and_then(Option::take).expect("T is ()"))
            }
            TAG_BOXED => self.downcast_boxed(),
            _ => Err(self),
        }
    }

    /// Takes the `T` out, like [`downcast`](Self::downcast), with an error
    /// that names the type asked for and the type found.
    ///
    /// ```
    /// use greenery::greenlet::{Value, WrongType};
    ///
    /// fn first_word(value: Value) -> Result<usize, WrongType> {
    ///     let text: String = value.cast()?;
    ///     Ok(text.split_whitespace().next().map_or(0, str::len))
    /// }
    /// assert_eq!(first_word(Value::new(String::from("green threads"))).unwrap(), 5);
    /// let err = first_word(Value::new(7u8)).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "expected a value of type `alloc::string::String`, found one of type `u8`"
    /// );
    /// ```
    ///
    /// # Errors
    ///
    /// [`WrongType`] if the value is not a `T`; it hands the value back
    /// ([`WrongType::into_value`]).
    #[inline(always)]
    pub fn cast<T: 'static>(self) -> Result<T, WrongType> {
        match self.downcast::<T>() {
            Ok(value) => Ok(value),
            Err(value) => Err(WrongType::new::<T>(value)),
        }
    }

    #[inline]
    fn downcast_boxed<T: 'static>(self) -> Result<T, Value> {
        // SAFETY: the tag says it is boxed.
        if !unsafe { self.boxed_any() }.is::<T>() {
            return Err(self);
        }
        let value = mem::ManuallyDrop::new(self);
        // SAFETY: the pointer came from `Box::into_raw` and is owned by this
        // value, which we forget: the box takes over.
        let boxed: Box<dyn Any> =
            unsafe { Box::from_raw(join::<*mut dyn Boxed>(value.words.0, value.words.1)) };
        Ok(*boxed.downcast::<T>().expect("checked just above"))
    }

    /// A reference to the `T` inside, if it is one.
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        match self.tag {
            TAG_EMPTY => {
                static UNIT: () = ();
                (&UNIT as &dyn Any).downcast_ref::<T>()
            }
            TAG_INLINE if self.inline_is::<T>() => {
                // SAFETY: the type ids match, so the data word holds a `T`.
                Some(unsafe { &*self.words.1.as_ptr().cast::<T>() })
            }
            TAG_INLINE => None,
            // SAFETY: the tag says it is boxed.
            _ => unsafe { self.boxed_any() }.downcast_ref::<T>(),
        }
    }

    /// The value as a tag (within [`TAG_BITS`]) and two words, to cross a
    /// switch in registers.
    #[inline(always)]
    pub(super) fn into_words(self) -> (usize, Words) {
        let value = mem::ManuallyDrop::new(self);
        (value.tag, value.words)
    }

    /// Rebuilds a value from [`into_words`](Self::into_words).
    ///
    /// # Safety
    ///
    /// `tag` and `words` must come from one call of `into_words`, and be used
    /// once.
    #[inline(always)]
    pub(super) unsafe fn from_words(tag: usize, words: Words) -> Value {
        Value { tag, words, _not_send: PhantomData }
    }
}

impl Drop for Value {
    #[inline(always)]
    fn drop(&mut self) {
        if self.tag == TAG_BOXED {
            drop_boxed(self.words.0, self.words.1);
        }
    }
}

#[cold]
#[inline(never)]
fn drop_boxed(a: Word, b: Word) {
    // SAFETY: only called by `Value::drop` with the words of a boxed value,
    // a pointer from `Box::into_raw` that the value owned.
    drop(unsafe { Box::from_raw(join::<*mut dyn Boxed>(a, b)) });
}

impl Default for Value {
    fn default() -> Value {
        Value::empty()
    }
}

impl fmt::Debug for Value {
    /// The value's type (its contents need not be `Debug`):
    /// `Value { type: "u32", .. }`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value").field("type", &self.type_name()).finish_non_exhaustive()
    }
}

/// [`Value::cast`] (or [`switch_as`](super::Greenlet::switch_as)) found a
/// value of another type than the one asked for. It names both types, and
/// hands the value back.
///
/// ```
/// use greenery::greenlet::Value;
///
/// let err = Value::new("text").cast::<u32>().unwrap_err();
/// assert_eq!((err.expected(), err.found()), ("u32", "&str"));
/// assert_eq!(format!("{err:?}"), r#"WrongType { expected: "u32", found: "&str" }"#);
/// assert_eq!(err.into_value().downcast::<&str>().ok(), Some("text"));
/// ```
pub struct WrongType(
    // Boxed: a `Result<T, WrongType>` stays small, which keeps the frames
    // of code that switches in a loop small too.
    Box<Mismatch>,
);

struct Mismatch {
    value: Value,
    expected: &'static str,
}

impl WrongType {
    #[cold]
    #[inline(never)]
    fn new<T: 'static>(value: Value) -> WrongType {
        WrongType(Box::new(Mismatch { value, expected: any::type_name::<T>() }))
    }

    /// The name of the type that was asked for.
    pub fn expected(&self) -> &'static str {
        self.0.expected
    }

    /// The name of the type the value has.
    pub fn found(&self) -> &'static str {
        self.0.value.type_name()
    }

    /// The value, handed back.
    pub fn into_value(self) -> Value {
        self.0.value
    }
}

impl fmt::Debug for WrongType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrongType").field("expected", &self.expected()).field("found", &self.found()).finish()
    }
}

impl fmt::Display for WrongType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected a value of type `{}`, found one of type `{}`", self.expected(), self.found())
    }
}

impl Error for WrongType {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_travel_inline_and_others_boxed() {
        assert_eq!(Value::new(7u8).tag, TAG_INLINE);
        assert_eq!(Value::new((1u32, 2u32)).tag, TAG_INLINE);
        assert_eq!(Value::new(&"static").tag, TAG_INLINE);
        assert_eq!(Value::new("two words").tag, TAG_BOXED);
        assert_eq!(Value::new([0u64; 3]).tag, TAG_BOXED);
        assert_eq!(Value::new(String::new()).tag, TAG_BOXED);
        assert_eq!(Value::new(()).tag, TAG_EMPTY);
        assert_eq!(Value::new(Value::new(5u32)).tag, TAG_INLINE);
    }

    #[test]
    fn values_survive_the_trip_through_words() {
        let (tag, words) = Value::new(String::from("boxed")).into_words();
        // SAFETY: straight from `into_words`.
        let back = unsafe { Value::from_words(tag, words) };
        assert_eq!(back.downcast::<String>().ok().as_deref(), Some("boxed"));
        let (tag, words) = Value::new(-3i16).into_words();
        // SAFETY: straight from `into_words`.
        assert_eq!(unsafe { Value::from_words(tag, words) }.downcast::<i16>().ok(), Some(-3));
        let (tag, words) = Value::empty().into_words();
        // SAFETY: straight from `into_words`.
        assert!(unsafe { Value::from_words(tag, words) }.is_empty());
    }

    #[test]
    fn downcasts_check_the_type() {
        let v = Value::new(5u32);
        assert!(v.is::<u32>() && !v.is::<i32>());
        assert_eq!(v.downcast_ref::<u32>(), Some(&5));
        assert_eq!(v.downcast_ref::<i32>(), None);
        let v = v.downcast::<i32>().unwrap_err();
        assert_eq!(v.downcast::<u32>().ok(), Some(5));
        assert_eq!(Value::empty().downcast::<()>().ok(), Some(()));
        assert_eq!(Value::empty().downcast_ref::<()>(), Some(&()));
        assert!(Value::empty().downcast::<u8>().is_err());
        let boxed = Value::new(vec![1, 2, 3]);
        assert!(boxed.is::<Vec<i32>>() && !boxed.is::<u8>());
        assert_eq!(boxed.downcast_ref::<Vec<i32>>().map(Vec::len), Some(3));
        let boxed = boxed.downcast::<String>().unwrap_err();
        assert_eq!(boxed.downcast::<Vec<i32>>().ok(), Some(vec![1, 2, 3]));
    }

    #[test]
    fn values_name_their_type_inline_boxed_and_empty() {
        assert_eq!(Value::new(7u8).type_name(), "u8");
        assert_eq!(Value::new('x').type_name(), "char");
        assert_eq!(Value::new(String::new()).type_name(), "alloc::string::String");
        assert_eq!(Value::new([0u64; 3]).type_name(), "[u64; 3]");
        assert_eq!(Value::new(()).type_name(), "()");
        assert_eq!(Value::new(Value::new(5u32)).type_name(), "u32");
        assert_eq!(format!("{:?}", Value::new(5u32)), r#"Value { type: "u32", .. }"#);
    }

    #[test]
    fn a_wrong_type_names_both_and_hands_the_value_back() {
        for (value, found) in [
            (Value::new(5u32), "u32"),
            (Value::new(String::from("s")), "alloc::string::String"),
            (Value::empty(), "()"),
        ] {
            let err = value.cast::<i64>().unwrap_err();
            assert_eq!((err.expected(), err.found()), ("i64", found));
            assert_eq!(
                err.to_string(),
                format!("expected a value of type `i64`, found one of type `{found}`")
            );
            assert_eq!(format!("{err:?}"), format!(r#"WrongType {{ expected: "i64", found: "{found}" }}"#));
            assert_eq!(err.into_value().type_name(), found);
        }
    }

    #[test]
    fn boxed_values_are_dropped_once() {
        use std::rc::Rc;
        let counter = Rc::new(());
        let value = Value::new(counter.clone());
        assert_eq!(Rc::strong_count(&counter), 2);
        let value = value.downcast::<u8>().unwrap_err();
        assert_eq!(Rc::strong_count(&counter), 2);
        drop(value);
        assert_eq!(Rc::strong_count(&counter), 1);
        let taken = Value::new(counter.clone()).downcast::<Rc<()>>().unwrap();
        assert_eq!(Rc::strong_count(&counter), 2);
        drop(taken);
        assert_eq!(Rc::strong_count(&counter), 1);
    }
}
