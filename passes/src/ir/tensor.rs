//! Dense tensors of every supported element type, on ndarray.
//!
//! [`Tensor`] is what constants in the IR hold and what the reference evaluator computes on.
//! Element-type dispatch goes through the macros at the end of this file, so each op is
//! written once as a generic function.

use std::fmt;

use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn};

use super::types::DType;

/// A dense tensor.
#[derive(Clone)]
pub enum Tensor {
    /// `f32` data.
    F32(ArrayD<f32>),
    /// `f64` data.
    F64(ArrayD<f64>),
    /// `f16` data.
    F16(ArrayD<f16>),
    /// `bf16` data.
    BF16(ArrayD<bf16>),
    /// `i8` data.
    I8(ArrayD<i8>),
    /// `i16` data.
    I16(ArrayD<i16>),
    /// `i32` data.
    I32(ArrayD<i32>),
    /// `i64` data.
    I64(ArrayD<i64>),
    /// `u8` data.
    U8(ArrayD<u8>),
    /// `u16` data.
    U16(ArrayD<u16>),
    /// `u32` data.
    U32(ArrayD<u32>),
    /// `u64` data.
    U64(ArrayD<u64>),
    /// `bool` data.
    Bool(ArrayD<bool>),
    /// String data.
    Str(ArrayD<String>),
}

/// Conversions every element type supports; they define `Cast` semantics (numpy's `astype`:
/// floats truncate toward zero when converted to integers, integers wrap).
pub trait Elem: Clone + Default + PartialEq + fmt::Debug + Send + Sync + 'static {
    /// The IR element type.
    const DTYPE: DType;
    /// Wraps an array into a [`Tensor`].
    fn wrap(a: ArrayD<Self>) -> Tensor;
    /// Borrows the array out of a tensor of this element type.
    fn unwrap(t: &Tensor) -> Option<&ArrayD<Self>>;
    /// Takes the array out of a tensor of this element type.
    fn unwrap_owned(t: Tensor) -> Option<ArrayD<Self>>;
    /// Value as f64 (strings parse, unparseable strings give NaN).
    fn to_f64(&self) -> f64;
    /// Value as i64 (floats truncate; u64 wraps).
    fn to_i64(&self) -> i64;
    /// Value as u64 (negative numbers wrap).
    fn to_u64(&self) -> u64;
    /// Value as bool (non-zero is true).
    fn to_bool(&self) -> bool;
    /// From f64 (to integers: truncation toward zero, then wrapping).
    fn from_f64(v: f64) -> Self;
    /// From i64 (wrapping).
    fn from_i64(v: i64) -> Self;
    /// From u64 (wrapping).
    fn from_u64(v: u64) -> Self;
    /// From bool.
    fn from_bool(v: bool) -> Self;
    /// Bit-exact equality (NaN equals NaN with the same payload).
    fn bit_eq(&self, other: &Self) -> bool;
}

macro_rules! int_elem {
    ($t:ty, $v:ident, $d:ident) => {
        impl Elem for $t {
            const DTYPE: DType = DType::$d;
            fn wrap(a: ArrayD<Self>) -> Tensor {
                Tensor::$v(a)
            }
            fn unwrap(t: &Tensor) -> Option<&ArrayD<Self>> {
                if let Tensor::$v(a) = t {
                    Some(a)
                } else {
                    None
                }
            }
            fn unwrap_owned(t: Tensor) -> Option<ArrayD<Self>> {
                if let Tensor::$v(a) = t {
                    Some(a)
                } else {
                    None
                }
            }
            fn to_f64(&self) -> f64 {
                *self as f64
            }
            fn to_i64(&self) -> i64 {
                *self as i64
            }
            fn to_u64(&self) -> u64 {
                *self as u64
            }
            fn to_bool(&self) -> bool {
                *self != 0
            }
            fn from_f64(v: f64) -> Self {
                if v.is_nan() {
                    0
                } else if v < 0.0 {
                    (v as i64) as $t
                } else {
                    (v as u64) as $t
                }
            }
            fn from_i64(v: i64) -> Self {
                v as $t
            }
            fn from_u64(v: u64) -> Self {
                v as $t
            }
            fn from_bool(v: bool) -> Self {
                v as $t
            }
            fn bit_eq(&self, o: &Self) -> bool {
                self == o
            }
        }
    };
}
int_elem!(i8, I8, I8);
int_elem!(i16, I16, I16);
int_elem!(i32, I32, I32);
int_elem!(i64, I64, I64);
int_elem!(u8, U8, U8);
int_elem!(u16, U16, U16);
int_elem!(u32, U32, U32);
int_elem!(u64, U64, U64);

macro_rules! float_elem {
    ($t:ty, $v:ident, $d:ident, $to:expr, $from:expr, $bits:expr) => {
        impl Elem for $t {
            const DTYPE: DType = DType::$d;
            fn wrap(a: ArrayD<Self>) -> Tensor {
                Tensor::$v(a)
            }
            fn unwrap(t: &Tensor) -> Option<&ArrayD<Self>> {
                if let Tensor::$v(a) = t {
                    Some(a)
                } else {
                    None
                }
            }
            fn unwrap_owned(t: Tensor) -> Option<ArrayD<Self>> {
                if let Tensor::$v(a) = t {
                    Some(a)
                } else {
                    None
                }
            }
            fn to_f64(&self) -> f64 {
                let f: fn(&$t) -> f64 = $to;
                f(self)
            }
            fn to_i64(&self) -> i64 {
                self.to_f64() as i64
            }
            fn to_u64(&self) -> u64 {
                let v = self.to_f64();
                if v < 0.0 {
                    (v as i64) as u64
                } else {
                    v as u64
                }
            }
            fn to_bool(&self) -> bool {
                self.to_f64() != 0.0
            }
            fn from_f64(v: f64) -> Self {
                let f: fn(f64) -> $t = $from;
                f(v)
            }
            fn from_i64(v: i64) -> Self {
                Self::from_f64(v as f64)
            }
            fn from_u64(v: u64) -> Self {
                Self::from_f64(v as f64)
            }
            fn from_bool(v: bool) -> Self {
                Self::from_f64(v as u8 as f64)
            }
            fn bit_eq(&self, o: &Self) -> bool {
                let f: fn(&$t) -> u64 = $bits;
                f(self) == f(o)
            }
        }
    };
}
float_elem!(f32, F32, F32, |x| *x as f64, |v| v as f32, |x| x.to_bits()
    as u64);
float_elem!(f64, F64, F64, |x| *x, |v| v, |x| x.to_bits());
float_elem!(
    f16,
    F16,
    F16,
    |x| f16::to_f64(*x),
    f16::from_f64,
    |x| x.to_bits() as u64
);
float_elem!(
    bf16,
    BF16,
    BF16,
    |x| bf16::to_f64(*x),
    bf16::from_f64,
    |x| x.to_bits() as u64
);

impl Elem for bool {
    const DTYPE: DType = DType::Bool;
    fn wrap(a: ArrayD<Self>) -> Tensor {
        Tensor::Bool(a)
    }
    fn unwrap(t: &Tensor) -> Option<&ArrayD<Self>> {
        if let Tensor::Bool(a) = t {
            Some(a)
        } else {
            None
        }
    }
    fn unwrap_owned(t: Tensor) -> Option<ArrayD<Self>> {
        if let Tensor::Bool(a) = t {
            Some(a)
        } else {
            None
        }
    }
    fn to_f64(&self) -> f64 {
        *self as u8 as f64
    }
    fn to_i64(&self) -> i64 {
        *self as i64
    }
    fn to_u64(&self) -> u64 {
        *self as u64
    }
    fn to_bool(&self) -> bool {
        *self
    }
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    fn from_i64(v: i64) -> Self {
        v != 0
    }
    fn from_u64(v: u64) -> Self {
        v != 0
    }
    fn from_bool(v: bool) -> Self {
        v
    }
    fn bit_eq(&self, o: &Self) -> bool {
        self == o
    }
}

impl Elem for String {
    const DTYPE: DType = DType::String;
    fn wrap(a: ArrayD<Self>) -> Tensor {
        Tensor::Str(a)
    }
    fn unwrap(t: &Tensor) -> Option<&ArrayD<Self>> {
        if let Tensor::Str(a) = t {
            Some(a)
        } else {
            None
        }
    }
    fn unwrap_owned(t: Tensor) -> Option<ArrayD<Self>> {
        if let Tensor::Str(a) = t {
            Some(a)
        } else {
            None
        }
    }
    fn to_f64(&self) -> f64 {
        let s = self.trim();
        match s.to_ascii_lowercase().as_str() {
            "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
            "-inf" | "-infinity" => f64::NEG_INFINITY,
            _ => s.parse().unwrap_or(f64::NAN),
        }
    }
    fn to_i64(&self) -> i64 {
        self.trim().parse().unwrap_or_else(|_| self.to_f64() as i64)
    }
    fn to_u64(&self) -> u64 {
        self.trim().parse().unwrap_or_else(|_| self.to_i64() as u64)
    }
    fn to_bool(&self) -> bool {
        !(self.is_empty() || self == "0" || self.eq_ignore_ascii_case("false"))
    }
    fn from_f64(v: f64) -> Self {
        format_float(v)
    }
    fn from_i64(v: i64) -> Self {
        v.to_string()
    }
    fn from_u64(v: u64) -> Self {
        v.to_string()
    }
    fn from_bool(v: bool) -> Self {
        (v as u8).to_string()
    }
    fn bit_eq(&self, o: &Self) -> bool {
        self == o
    }
}

fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "INF".into()
        } else {
            "-INF".into()
        }
    } else {
        format!("{v:?}")
    }
}

/// Dispatches on every variant: `dispatch!(tensor, a => expr)` binds the array to `a`
/// with its element type `T` available as a type alias inside `expr`.
#[macro_export]
macro_rules! dispatch {
    ($t:expr, $a:ident => $body:expr) => {
        match $t {
            $crate::ir::Tensor::F32($a) => {
                #[allow(dead_code)]
                type T = f32;
                $body
            }
            $crate::ir::Tensor::F64($a) => {
                #[allow(dead_code)]
                type T = f64;
                $body
            }
            $crate::ir::Tensor::F16($a) => {
                #[allow(dead_code)]
                type T = half::f16;
                $body
            }
            $crate::ir::Tensor::BF16($a) => {
                #[allow(dead_code)]
                type T = half::bf16;
                $body
            }
            $crate::ir::Tensor::I8($a) => {
                #[allow(dead_code)]
                type T = i8;
                $body
            }
            $crate::ir::Tensor::I16($a) => {
                #[allow(dead_code)]
                type T = i16;
                $body
            }
            $crate::ir::Tensor::I32($a) => {
                #[allow(dead_code)]
                type T = i32;
                $body
            }
            $crate::ir::Tensor::I64($a) => {
                #[allow(dead_code)]
                type T = i64;
                $body
            }
            $crate::ir::Tensor::U8($a) => {
                #[allow(dead_code)]
                type T = u8;
                $body
            }
            $crate::ir::Tensor::U16($a) => {
                #[allow(dead_code)]
                type T = u16;
                $body
            }
            $crate::ir::Tensor::U32($a) => {
                #[allow(dead_code)]
                type T = u32;
                $body
            }
            $crate::ir::Tensor::U64($a) => {
                #[allow(dead_code)]
                type T = u64;
                $body
            }
            $crate::ir::Tensor::Bool($a) => {
                #[allow(dead_code)]
                type T = bool;
                $body
            }
            $crate::ir::Tensor::Str($a) => {
                #[allow(dead_code)]
                type T = String;
                $body
            }
        }
    };
}

/// Like [`dispatch!`] for numeric tensors only (all but bool and string); `$other` is the
/// expression for the remaining ones.
#[macro_export]
macro_rules! dispatch_numeric {
    ($t:expr, $a:ident => $body:expr, _ => $other:expr) => {
        match $t {
            $crate::ir::Tensor::F32($a) => {
                #[allow(dead_code)]
                type T = f32;
                $body
            }
            $crate::ir::Tensor::F64($a) => {
                #[allow(dead_code)]
                type T = f64;
                $body
            }
            $crate::ir::Tensor::F16($a) => {
                #[allow(dead_code)]
                type T = half::f16;
                $body
            }
            $crate::ir::Tensor::BF16($a) => {
                #[allow(dead_code)]
                type T = half::bf16;
                $body
            }
            $crate::ir::Tensor::I8($a) => {
                #[allow(dead_code)]
                type T = i8;
                $body
            }
            $crate::ir::Tensor::I16($a) => {
                #[allow(dead_code)]
                type T = i16;
                $body
            }
            $crate::ir::Tensor::I32($a) => {
                #[allow(dead_code)]
                type T = i32;
                $body
            }
            $crate::ir::Tensor::I64($a) => {
                #[allow(dead_code)]
                type T = i64;
                $body
            }
            $crate::ir::Tensor::U8($a) => {
                #[allow(dead_code)]
                type T = u8;
                $body
            }
            $crate::ir::Tensor::U16($a) => {
                #[allow(dead_code)]
                type T = u16;
                $body
            }
            $crate::ir::Tensor::U32($a) => {
                #[allow(dead_code)]
                type T = u32;
                $body
            }
            $crate::ir::Tensor::U64($a) => {
                #[allow(dead_code)]
                type T = u64;
                $body
            }
            _ => $other,
        }
    };
}

/// Like [`dispatch!`] for the float tensors only; `$other` is the expression for the rest.
#[macro_export]
macro_rules! dispatch_float {
    ($t:expr, $a:ident => $body:expr, _ => $other:expr) => {
        match $t {
            $crate::ir::Tensor::F32($a) => {
                #[allow(dead_code)]
                type T = f32;
                $body
            }
            $crate::ir::Tensor::F64($a) => {
                #[allow(dead_code)]
                type T = f64;
                $body
            }
            $crate::ir::Tensor::F16($a) => {
                #[allow(dead_code)]
                type T = half::f16;
                $body
            }
            $crate::ir::Tensor::BF16($a) => {
                #[allow(dead_code)]
                type T = half::bf16;
                $body
            }
            _ => $other,
        }
    };
}

impl Tensor {
    /// Builds a tensor from a shape and row-major data. Errors if the lengths disagree.
    pub fn from_vec<T: Elem>(shape: &[usize], data: Vec<T>) -> Result<Tensor, String> {
        ArrayD::from_shape_vec(IxDyn(shape), data)
            .map(T::wrap)
            .map_err(|e| format!("tensor data does not match shape {shape:?}: {e}"))
    }

    /// A scalar.
    pub fn scalar<T: Elem>(v: T) -> Tensor {
        T::wrap(ArrayD::from_elem(IxDyn(&[]), v))
    }

    /// A zero-filled tensor (empty strings, false).
    pub fn zeros(dtype: DType, shape: &[usize]) -> Tensor {
        fn z<T: Elem>(shape: &[usize]) -> Tensor {
            T::wrap(ArrayD::from_elem(IxDyn(shape), T::default()))
        }
        match dtype {
            DType::F32 => z::<f32>(shape),
            DType::F64 => z::<f64>(shape),
            DType::F16 => z::<f16>(shape),
            DType::BF16 => z::<bf16>(shape),
            DType::I8 => z::<i8>(shape),
            DType::I16 => z::<i16>(shape),
            DType::I32 => z::<i32>(shape),
            DType::I64 => z::<i64>(shape),
            DType::U8 => z::<u8>(shape),
            DType::U16 => z::<u16>(shape),
            DType::U32 => z::<u32>(shape),
            DType::U64 => z::<u64>(shape),
            DType::Bool => z::<bool>(shape),
            DType::String => z::<String>(shape),
        }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        dispatch!(self, _a => <T as Elem>::DTYPE)
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        dispatch!(self, a => a.shape())
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        dispatch!(self, a => a.len())
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Borrows the array if the element type is `T`.
    pub fn as_array<T: Elem>(&self) -> Option<&ArrayD<T>> {
        T::unwrap(self)
    }

    /// Converts to another element type with numpy `astype` semantics.
    pub fn cast(&self, to: DType) -> Tensor {
        fn conv<S: Elem, D: Elem>(a: &ArrayD<S>) -> Tensor {
            let f: fn(&S) -> D = match S::DTYPE {
                d if d.is_float() || d == DType::String => |x| D::from_f64(x.to_f64()),
                DType::Bool => |x| D::from_bool(x.to_bool()),
                DType::U8 | DType::U16 | DType::U32 | DType::U64 => |x| D::from_u64(x.to_u64()),
                _ => |x| D::from_i64(x.to_i64()),
            };
            D::wrap(a.map(f))
        }
        if self.dtype() == to {
            return self.clone();
        }
        // String to integer parses integers exactly rather than through f64.
        if let (Tensor::Str(a), true) = (self, to.is_int()) {
            return match to {
                DType::U64 | DType::U32 | DType::U16 | DType::U8 => {
                    Tensor::U64(a.map(|s| s.to_u64())).cast(to)
                }
                _ => Tensor::I64(a.map(|s| s.to_i64())).cast(to),
            };
        }
        dispatch!(self, a => match to {
            DType::F32 => conv::<T, f32>(a),
            DType::F64 => conv::<T, f64>(a),
            DType::F16 => conv::<T, f16>(a),
            DType::BF16 => conv::<T, bf16>(a),
            DType::I8 => conv::<T, i8>(a),
            DType::I16 => conv::<T, i16>(a),
            DType::I32 => conv::<T, i32>(a),
            DType::I64 => conv::<T, i64>(a),
            DType::U8 => conv::<T, u8>(a),
            DType::U16 => conv::<T, u16>(a),
            DType::U32 => conv::<T, u32>(a),
            DType::U64 => conv::<T, u64>(a),
            DType::Bool => conv::<T, bool>(a),
            DType::String => conv::<T, String>(a),
        })
    }

    /// All elements as i64 in row-major order (for shape-like inputs). Errors on floats and
    /// strings.
    pub fn to_i64_vec(&self) -> Result<Vec<i64>, String> {
        match self.dtype() {
            d if d.is_int() || d == DType::Bool => {
                Ok(dispatch!(self, a => a.iter().map(|x| x.to_i64()).collect()))
            }
            d => Err(format!("expected an integer tensor, got {d}")),
        }
    }

    /// All elements as f64 in row-major order.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        dispatch!(self, a => a.iter().map(|x| x.to_f64()).collect())
    }

    /// Reshapes (same number of elements), keeping the data in row-major order.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor, String> {
        dispatch!(self, a => {
            let v: Vec<T> = a.iter().cloned().collect();
            Tensor::from_vec(shape, v)
        })
    }

    /// True when `self` holds the same value everywhere.
    pub fn is_splat(&self) -> bool {
        dispatch!(self, a => {
            let mut it = a.iter();
            match it.next() {
                None => true,
                Some(first) => it.all(|x| x.bit_eq(first)),
            }
        })
    }

    /// A stable 64-bit digest of dtype, shape and bits (FNV-1a), used by the text format to
    /// name constants it does not print in full.
    pub fn digest(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= *b as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(&[self.dtype() as u8]);
        for d in self.shape() {
            eat(&(*d as u64).to_le_bytes());
        }
        match self {
            Tensor::Str(a) => {
                for s in a.iter() {
                    eat(&(s.len() as u64).to_le_bytes());
                    eat(s.as_bytes());
                }
            }
            _ => {
                dispatch_numeric!(self, a => {
                    for x in a.iter() {
                        eat(&x.to_bits_u64().to_le_bytes());
                    }
                }, _ => {
                    if let Tensor::Bool(a) = self {
                        for x in a.iter() {
                            eat(&[*x as u8]);
                        }
                    }
                })
            }
        }
        h
    }
}

/// Raw bit pattern of a numeric element, for digests.
pub trait ToBits {
    /// The element's bits, zero-extended.
    fn to_bits_u64(&self) -> u64;
}
macro_rules! to_bits_int {
    ($($t:ty),*) => { $(impl ToBits for $t { fn to_bits_u64(&self) -> u64 { *self as u64 } })* };
}
to_bits_int!(i8, i16, i32, i64, u8, u16, u32, u64);
impl ToBits for f32 {
    fn to_bits_u64(&self) -> u64 {
        self.to_bits() as u64
    }
}
impl ToBits for f64 {
    fn to_bits_u64(&self) -> u64 {
        self.to_bits()
    }
}
impl ToBits for f16 {
    fn to_bits_u64(&self) -> u64 {
        self.to_bits() as u64
    }
}
impl ToBits for bf16 {
    fn to_bits_u64(&self) -> u64 {
        self.to_bits() as u64
    }
}

impl PartialEq for Tensor {
    /// Bit-exact equality of dtype, shape and every element.
    fn eq(&self, other: &Tensor) -> bool {
        if self.dtype() != other.dtype() || self.shape() != other.shape() {
            return false;
        }
        dispatch!(self, a => {
            let b = <T as Elem>::unwrap(other).expect("same dtype checked above");
            a.iter().zip(b.iter()).all(|(x, y)| x.bit_eq(y))
        })
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor<{}{:?}>", self.dtype(), self.shape())?;
        if self.len() <= 16 {
            dispatch!(self, a => write!(f, "{:?}", a.iter().collect::<Vec<_>>()))?;
        }
        Ok(())
    }
}
