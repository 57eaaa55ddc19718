//! Cast, CastLike and BitCast.
//!
//! Cast follows numpy's `astype` (what the ONNX reference uses) and relies on
//! [`Tensor::cast`] except where that would round twice or format differently: conversions
//! to f16/bf16 round once (through [`super::num::f32_round_to_odd`]), string -> f32 parses
//! directly, and floats and bools format to strings as numpy's `str` does (`0.47892547`,
//! `1e-05`, `nan`, `True`).

use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn};

use super::num::Num;
use crate::ir::{DType, Elem, Tensor};

/// Converts `t` to `to` with numpy `astype` semantics.
pub fn cast(t: &Tensor, to: DType) -> Tensor {
    if t.dtype() == to {
        return t.clone();
    }
    match (t, to) {
        (Tensor::F16(a), DType::String) => Tensor::Str(a.map(|v| {
            let reads = |s: &str| s.parse::<f64>().ok().map(|p| f16::from_f64r(p).to_f());
            float_str(v.to_f(), shortest(v.to_f(), reads), 1e3)
        })),
        (Tensor::BF16(a), DType::String) => Tensor::Str(a.map(|v| {
            let reads = |s: &str| s.parse::<f64>().ok().map(|p| bf16::from_f64r(p).to_f());
            float_str(v.to_f(), shortest(v.to_f(), reads), 1e3)
        })),
        // Widen f16/bf16 exactly to f64 first, so that every other conversion starts from
        // f64 (numpy gives the same results).
        (Tensor::F16(a), _) => cast(&Tensor::F64(a.mapv(Num::to_f)), to),
        (Tensor::BF16(a), _) => cast(&Tensor::F64(a.mapv(Num::to_f)), to),
        (Tensor::Str(a), DType::F32) => Tensor::F32(a.map(|s| parse_f32(s))),
        (Tensor::Str(_), DType::F16 | DType::BF16) => cast(&t.cast(DType::F64), to),
        (Tensor::Str(_), _) => t.cast(to),
        (_, DType::F16) => Tensor::F16(as_f64(t).map(|v| f16::from_f64r(*v))),
        (_, DType::BF16) => Tensor::BF16(as_f64(t).map(|v| bf16::from_f64r(*v))),
        (Tensor::F32(a), DType::String) => Tensor::Str(a.map(|v| {
            let reads = |s: &str| s.parse::<f32>().ok().map(f64::from);
            float_str(v.to_f(), shortest(v.to_f(), reads), 1e6)
        })),
        (Tensor::F64(a), DType::String) => {
            Tensor::Str(a.map(|v| float_str(*v, shortest(*v, |s| s.parse::<f64>().ok()), 1e16)))
        }
        (Tensor::Bool(a), DType::String) => {
            Tensor::Str(a.map(|v| if *v { "True".into() } else { "False".into() }))
        }
        _ => t.cast(to),
    }
}

/// `t` (not f16/bf16) converted to f64.
fn as_f64(t: &Tensor) -> ArrayD<f64> {
    match t.cast(DType::F64) {
        Tensor::F64(a) => a,
        _ => unreachable!("Tensor::cast to f64 gives f64"),
    }
}

/// Parses a string as f32 the way Cast does: surrounding blanks ignored, `inf`/`INF`/
/// `+Infinity`/`nan` accepted in any case, anything unparseable is NaN.
fn parse_f32(s: &str) -> f32 {
    let s = s.trim();
    match s.parse::<f32>() {
        Ok(v) => v,
        Err(_) => s.to_string().to_f64() as f32,
    }
}

/// The shortest decimal digits that read back as `v` (`reads(text)` gives the value a
/// decimal text rounds to in the source type), as (digits without a point, decimal exponent
/// of the first digit).
fn shortest(v: f64, reads: impl Fn(&str) -> Option<f64>) -> (String, i32) {
    let mut text = format!("{v:e}");
    if v.is_finite() {
        for p in 0..17 {
            let s = format!("{v:.p$e}");
            if reads(&s) == Some(v) {
                text = s;
                break;
            }
        }
    }
    let (mant, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// Formats a float like numpy's `str`: positional for `1e-4 <= |v| < upper` (and zero),
/// scientific (`1.5e-05`, `1e+16`) otherwise; `nan`, `inf`, `-inf`.
fn float_str(v: f64, (digits, exp): (String, i32), upper: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let sign = if v.is_sign_negative() { "-" } else { "" };
    let digits = if v == 0.0 { "0".to_string() } else { digits };
    let a = v.abs();
    if a == 0.0 || (1e-4..upper).contains(&a) {
        let exp = if v == 0.0 { 0 } else { exp };
        if exp >= 0 {
            let int_len = exp as usize + 1;
            let (int, frac) = if digits.len() > int_len {
                (digits[..int_len].to_string(), digits[int_len..].to_string())
            } else {
                (format!("{digits:0<int_len$}"), "0".to_string())
            };
            format!("{sign}{int}.{frac}")
        } else {
            format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
        }
    } else {
        let mant = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        format!(
            "{sign}{mant}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    }
}

/// Raw little-endian bytes of an element.
trait Raw: Elem + Sized {
    /// Appends the element's bytes.
    fn put(&self, out: &mut Vec<u8>);
    /// Reads an element from exactly `size` bytes.
    fn get(b: &[u8]) -> Self;
}

macro_rules! raw {
    ($($t:ty),*) => {$(
        impl Raw for $t {
            fn put(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().expect("chunk of the element size"))
            }
        }
    )*};
}
raw!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, f16, bf16);

impl Raw for bool {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(*self as u8);
    }
    fn get(b: &[u8]) -> Self {
        b[0] != 0
    }
}

/// Reinterprets the bits of `t` as `to`, which must have the same element size; the shape
/// is unchanged. A byte other than 0 or 1 read as bool is true.
pub fn bitcast(t: &Tensor, to: DType) -> Result<Tensor, String> {
    fn bytes<T: Raw>(a: &ArrayD<T>) -> Vec<u8> {
        let mut out = Vec::with_capacity(a.len() * std::mem::size_of::<T>());
        a.iter().for_each(|v| v.put(&mut out));
        out
    }
    fn read<T: Raw>(shape: &[usize], b: &[u8]) -> Result<Tensor, String> {
        let v: Vec<T> = b
            .chunks_exact(std::mem::size_of::<T>())
            .map(T::get)
            .collect();
        ArrayD::from_shape_vec(IxDyn(shape), v)
            .map(T::wrap)
            .map_err(|e| e.to_string())
    }
    let from = t.dtype();
    if from == DType::String || to == DType::String {
        return Err("bitcast does not apply to strings".into());
    }
    if from.size() != to.size() {
        return Err(format!(
            "bitcast from {from} to {to} changes the element size"
        ));
    }
    let b = match t {
        Tensor::F32(a) => bytes(a),
        Tensor::F64(a) => bytes(a),
        Tensor::F16(a) => bytes(a),
        Tensor::BF16(a) => bytes(a),
        Tensor::I8(a) => bytes(a),
        Tensor::I16(a) => bytes(a),
        Tensor::I32(a) => bytes(a),
        Tensor::I64(a) => bytes(a),
        Tensor::U8(a) => bytes(a),
        Tensor::U16(a) => bytes(a),
        Tensor::U32(a) => bytes(a),
        Tensor::U64(a) => bytes(a),
        Tensor::Bool(a) => bytes(a),
        Tensor::Str(_) => unreachable!("strings refused above"),
    };
    let shape = t.shape();
    match to {
        DType::F32 => read::<f32>(shape, &b),
        DType::F64 => read::<f64>(shape, &b),
        DType::F16 => read::<f16>(shape, &b),
        DType::BF16 => read::<bf16>(shape, &b),
        DType::I8 => read::<i8>(shape, &b),
        DType::I16 => read::<i16>(shape, &b),
        DType::I32 => read::<i32>(shape, &b),
        DType::I64 => read::<i64>(shape, &b),
        DType::U8 => read::<u8>(shape, &b),
        DType::U16 => read::<u16>(shape, &b),
        DType::U32 => read::<u32>(shape, &b),
        DType::U64 => read::<u64>(shape, &b),
        DType::Bool => read::<bool>(shape, &b),
        DType::String => unreachable!("strings refused above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(t: &Tensor) -> Vec<String> {
        t.as_array::<String>()
            .expect("string tensor")
            .iter()
            .cloned()
            .collect()
    }

    #[test]
    fn floats_format_like_numpy_str() {
        // Expected strings from numpy 2.4: np.array(v, dtype).astype(np.str_).
        let f = [
            0.478_925_47f32,
            1.0,
            100.0,
            1e16,
            1.5e-5,
            0.0001,
            -0.0,
            123_456_790.0,
            1e-45,
            3.4e38,
            999_999.0,
            1e6,
        ];
        let t = Tensor::from_vec(&[f.len()], f.to_vec()).unwrap();
        let want = [
            "0.47892547",
            "1.0",
            "100.0",
            "1e+16",
            "1.5e-05",
            "1e-04",
            "-0.0",
            "1.2345679e+08",
            "1e-45",
            "3.4e+38",
            "999999.0",
            "1e+06",
        ];
        assert_eq!(strs(&cast(&t, DType::String)), want);
        let t = Tensor::from_vec(&[3], vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY]).unwrap();
        assert_eq!(strs(&cast(&t, DType::String)), ["nan", "inf", "-inf"]);
        let t = Tensor::from_vec(&[4], vec![0.1f64, 12_345_678.0, 1e16, 0.000_15]).unwrap();
        assert_eq!(
            strs(&cast(&t, DType::String)),
            ["0.1", "12345678.0", "1e+16", "0.00015"]
        );
        let t = Tensor::from_vec(
            &[4],
            vec![
                f16::from_f32(0.1),
                f16::from_f32(65504.0),
                f16::from_f32(999.0),
                f16::from_f32(1000.0),
            ],
        )
        .unwrap();
        assert_eq!(
            strs(&cast(&t, DType::String)),
            ["0.1", "6.55e+04", "999.0", "1e+03"]
        );
        let t = Tensor::from_vec(&[2], vec![true, false]).unwrap();
        assert_eq!(strs(&cast(&t, DType::String)), ["True", "False"]);
        let t = Tensor::from_vec(&[2], vec![-7i32, 42]).unwrap();
        assert_eq!(strs(&cast(&t, DType::String)), ["-7", "42"]);
    }

    #[test]
    fn strings_parse() {
        let t = Tensor::from_vec(
            &[6],
            ["0.47892547", " 2.5 ", "INF", "-inf", "NaN", "1e3"]
                .map(String::from)
                .to_vec(),
        )
        .unwrap();
        let got = cast(&t, DType::F32);
        let v: Vec<f32> = got.as_array::<f32>().unwrap().iter().copied().collect();
        assert_eq!(v[0], 0.478_925_47);
        assert_eq!(v[1], 2.5);
        assert_eq!(v[2], f32::INFINITY);
        assert_eq!(v[3], f32::NEG_INFINITY);
        assert!(v[4].is_nan());
        assert_eq!(v[5], 1000.0);
        let t = Tensor::from_vec(&[2], ["-12", "300"].map(String::from).to_vec()).unwrap();
        assert_eq!(
            cast(&t, DType::I64),
            Tensor::from_vec(&[2], vec![-12i64, 300]).unwrap()
        );
    }

    #[test]
    fn numeric_casts() {
        // numpy: np.array([0.47892547, 0.48033667, 0.81910545, nan], np.float32) -> bfloat16
        // (ml_dtypes) gives 0.478516, 0.480469, 0.820312, nan; round to nearest even.
        let t = Tensor::from_vec(
            &[4],
            vec![0.478_925_47f32, 0.480_336_67, 0.819_105_45, f32::NAN],
        )
        .unwrap();
        let got = cast(&t, DType::BF16);
        let v: Vec<f32> = got
            .as_array::<bf16>()
            .unwrap()
            .iter()
            .map(|x| bf16::to_f32(*x))
            .collect();
        assert_eq!(&v[..3], &[0.478_515_63, 0.480_468_75, 0.820_312_5]);
        assert!(v[3].is_nan());
        // Floats truncate toward zero into integers; integers wrap.
        let t = Tensor::from_vec(&[3], vec![-2.7f64, 2.7, 300.0]).unwrap();
        assert_eq!(
            cast(&t, DType::I32),
            Tensor::from_vec(&[3], vec![-2i32, 2, 300]).unwrap()
        );
        assert_eq!(
            cast(&cast(&t, DType::I32), DType::U8),
            Tensor::from_vec(&[3], vec![254u8, 2, 44]).unwrap()
        );
        let t = Tensor::from_vec(&[2], vec![0.0f32, -0.5]).unwrap();
        assert_eq!(
            cast(&t, DType::Bool),
            Tensor::from_vec(&[2], vec![false, true]).unwrap()
        );
        let t = Tensor::from_vec(&[2], vec![65520.0f64, 1e-8]).unwrap();
        let got = cast(&t, DType::F16);
        assert_eq!(
            got.as_array::<f16>()
                .unwrap()
                .iter()
                .map(|x| x.to_f())
                .collect::<Vec<_>>(),
            [f64::INFINITY, 0.0]
        );
        let empty = Tensor::from_vec::<f32>(&[0, 3], vec![]).unwrap();
        assert_eq!(cast(&empty, DType::I8).shape(), &[0, 3]);
    }

    #[test]
    fn bitcast_reinterprets() {
        // np.float32(1.0).view(np.int32) == 1065353216; np.float32(-2.0).view(np.uint32) == 3221225472.
        let t = Tensor::from_vec(&[2], vec![1.0f32, -2.0]).unwrap();
        assert_eq!(
            bitcast(&t, DType::I32).unwrap(),
            Tensor::from_vec(&[2], vec![1_065_353_216i32, -1_073_741_824]).unwrap()
        );
        assert_eq!(
            bitcast(&t, DType::U32).unwrap(),
            Tensor::from_vec(&[2], vec![1_065_353_216u32, 3_221_225_472]).unwrap()
        );
        let s = Tensor::scalar(-1i8);
        assert_eq!(bitcast(&s, DType::U8).unwrap(), Tensor::scalar(255u8));
        let b = Tensor::from_vec(&[2, 1], vec![true, false]).unwrap();
        assert_eq!(
            bitcast(&b, DType::U8).unwrap(),
            Tensor::from_vec(&[2, 1], vec![1u8, 0]).unwrap()
        );
        let h = Tensor::from_vec(&[1], vec![0x3c00u16]).unwrap();
        assert_eq!(
            bitcast(&h, DType::F16).unwrap(),
            Tensor::from_vec(&[1], vec![f16::ONE]).unwrap()
        );
        assert!(bitcast(&t, DType::I64).is_err());
        assert!(bitcast(&t, DType::String).is_err());
    }
}
