//! Scalar arithmetic for the elementwise ops: the [`Num`] trait (integers wrap, integer
//! division truncates, floats compute in f64 and round once to their own type), correctly
//! rounded f64 -> f16/bf16 conversion, and `erf`.

use half::{bf16, f16};

use crate::ir::Elem;

/// Arithmetic on one numeric element type with ONNX (numpy) semantics.
///
/// Integers wrap on overflow; division and remainder by zero are errors. Floats compute in
/// f64 and round once to their type, which is exact or correctly rounded for every basic
/// operation here (f64 has more than twice the precision of f32, f16 and bf16).
pub trait Num: Elem + Copy + PartialOrd {
    /// From f64, correctly rounded for floats (truncating toward zero for integers).
    fn from_f64r(v: f64) -> Self;
    /// To f64 (exact for floats).
    fn to_f(self) -> f64;
    /// `self + o`.
    fn add(self, o: Self) -> Self;
    /// `self - o`.
    fn sub(self, o: Self) -> Self;
    /// `self * o`.
    fn mul(self, o: Self) -> Self;
    /// `self / o`; integers truncate toward zero and refuse a zero divisor.
    fn div(self, o: Self) -> Result<Self, String>;
    /// Remainder: with `fmod` the sign follows the dividend (C `fmod`), otherwise the divisor
    /// (Python `%`).
    fn rem(self, o: Self, fmod: bool) -> Result<Self, String>;
    /// Absolute value (wrapping for the most negative integer).
    fn abs(self) -> Self;
    /// Negation (wrapping for integers).
    fn neg(self) -> Self;
    /// -1, 0 or 1 (NaN stays NaN, signed zeros stay).
    fn sign(self) -> Self;
    /// `self` raised to an integer power (integers: wrapping; negative powers give 0 unless
    /// the base is 1 or -1).
    fn powi(self, e: i64) -> Self;
    /// True for a float NaN.
    fn is_nan(self) -> bool;

    /// Zero.
    fn zero() -> Self {
        Self::from_f64r(0.0)
    }
    /// numpy `maximum`: NaN wins, otherwise the larger (the first on ties).
    fn max_nan(self, o: Self) -> Self {
        if self.is_nan() || self >= o {
            self
        } else {
            o
        }
    }
    /// numpy `minimum`: NaN wins, otherwise the smaller (the first on ties).
    fn min_nan(self, o: Self) -> Self {
        if self.is_nan() || self <= o {
            self
        } else {
            o
        }
    }
}

macro_rules! int_num {
    ($($t:ty),*) => {$(
        #[allow(unused_comparisons)]
        impl Num for $t {
            fn from_f64r(v: f64) -> Self {
                <$t as Elem>::from_f64(v)
            }
            fn to_f(self) -> f64 {
                self as f64
            }
            fn add(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            fn sub(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            fn mul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            fn div(self, o: Self) -> Result<Self, String> {
                if o == 0 {
                    return Err("integer division by zero".into());
                }
                Ok(self.wrapping_div(o))
            }
            fn rem(self, o: Self, fmod: bool) -> Result<Self, String> {
                if o == 0 {
                    return Err("integer modulo by zero".into());
                }
                let r = self.wrapping_rem(o);
                Ok(if !fmod && r != 0 && (r < 0) != (o < 0) { r.wrapping_add(o) } else { r })
            }
            fn abs(self) -> Self {
                if self < 0 { self.wrapping_neg() } else { self }
            }
            fn neg(self) -> Self {
                self.wrapping_neg()
            }
            fn sign(self) -> Self {
                if self > 0 { 1 } else if self < 0 { (0 as $t).wrapping_sub(1) } else { 0 }
            }
            fn powi(self, e: i64) -> Self {
                if e < 0 {
                    return match self.to_i64() {
                        1 => 1,
                        -1 if e % 2 == 0 => 1,
                        -1 => self,
                        _ => 0,
                    };
                }
                let (mut base, mut acc, mut e) = (self, 1 as $t, e as u64);
                while e > 0 {
                    if e & 1 == 1 {
                        acc = acc.wrapping_mul(base);
                    }
                    base = base.wrapping_mul(base);
                    e >>= 1;
                }
                acc
            }
            fn is_nan(self) -> bool {
                false
            }
        }
    )*};
}
int_num!(i8, i16, i32, i64, u8, u16, u32, u64);

macro_rules! float_num {
    ($t:ty, $from:expr, $to:expr) => {
        impl Num for $t {
            fn from_f64r(v: f64) -> Self {
                let f: fn(f64) -> $t = $from;
                f(v)
            }
            fn to_f(self) -> f64 {
                let f: fn($t) -> f64 = $to;
                f(self)
            }
            fn add(self, o: Self) -> Self {
                Self::from_f64r(self.to_f() + o.to_f())
            }
            fn sub(self, o: Self) -> Self {
                Self::from_f64r(self.to_f() - o.to_f())
            }
            fn mul(self, o: Self) -> Self {
                Self::from_f64r(self.to_f() * o.to_f())
            }
            fn div(self, o: Self) -> Result<Self, String> {
                Ok(Self::from_f64r(self.to_f() / o.to_f()))
            }
            fn rem(self, o: Self, fmod: bool) -> Result<Self, String> {
                let (a, b) = (self.to_f(), o.to_f());
                let mut r = a % b;
                if !fmod {
                    if r == 0.0 {
                        r = 0.0f64.copysign(b);
                    } else if (r < 0.0) != (b < 0.0) {
                        r += b;
                    }
                }
                Ok(Self::from_f64r(r))
            }
            fn abs(self) -> Self {
                Self::from_f64r(self.to_f().abs())
            }
            fn neg(self) -> Self {
                Self::from_f64r(-self.to_f())
            }
            fn sign(self) -> Self {
                let v = self.to_f();
                Self::from_f64r(if v > 0.0 {
                    1.0
                } else if v < 0.0 {
                    -1.0
                } else {
                    v
                })
            }
            fn powi(self, e: i64) -> Self {
                Self::from_f64r(self.to_f().powf(e as f64))
            }
            fn is_nan(self) -> bool {
                self.to_f().is_nan()
            }
        }
    };
}
float_num!(f32, |v| v as f32, f64::from);
float_num!(f64, |v| v, |v| v);
float_num!(f16, |v| f16::from_f32(f32_round_to_odd(v)), f16::to_f64);
float_num!(bf16, |v| bf16::from_f32(f32_round_to_odd(v)), bf16::to_f64);

/// Rounds f64 to f32 with round-to-odd: an inexact result gets an odd last mantissa bit.
/// Rounding that f32 to nearest-even at f16 or bf16 precision then equals rounding `v`
/// directly (f32 keeps more than two extra bits), so there is no double-rounding error.
pub fn f32_round_to_odd(v: f64) -> f32 {
    let f = v as f32;
    if v.is_nan() || f as f64 == v || f.to_bits() & 1 == 1 {
        return f;
    }
    // Inexact with an even last bit: step one ulp toward `v` (this also turns an overflow
    // to infinity back into f32::MAX, which then rounds to infinity in the narrower type).
    let bits = f.to_bits();
    f32::from_bits(if v.abs() > (f as f64).abs() {
        bits + 1
    } else {
        bits - 1
    })
}

/// The error function, accurate to a few f64 ulps.
///
/// Uses erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_{n>=0} (2x^2)^n x / (1*3*...*(2n+1)), whose
/// terms are all positive (no cancellation); for |x| >= 6, erf(x) rounds to +-1 in f64.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x.abs() >= 6.0 {
        return 1.0f64.copysign(x);
    }
    let x2 = 2.0 * x * x;
    let (mut term, mut sum) = (x, x);
    let mut n = 1.0;
    while term.abs() > sum.abs() * 1e-17 {
        term *= x2 / (2.0 * n + 1.0);
        sum += term;
        n += 1.0;
    }
    let r = std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp() * sum;
    r.clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_python_math_erf() {
        // Values from Python's math.erf.
        let cases = [
            (0.0, 0.0),
            (1e-10, 1.1283791670955126e-10),
            (0.1, 0.1124629160182849),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (1.7640524, 0.9873952972975555),
            (2.5, 0.999593047982555),
            (3.5, 0.9999992569016276),
            (5.9, 0.9999999999999999),
            (-0.75, -0.7111556336535151),
        ];
        for (x, want) in cases {
            let got = erf(x);
            assert!(
                (got - want).abs() <= 1e-14 * want.abs().max(1e-300),
                "erf({x}) = {got}, want {want}"
            );
        }
        assert_eq!(erf(f64::INFINITY), 1.0);
        assert_eq!(erf(f64::NEG_INFINITY), -1.0);
        assert!(erf(f64::NAN).is_nan());
        assert!(erf(-0.0).is_sign_negative());
    }

    #[test]
    fn half_rounding_is_direct() {
        // 1 + 2^-11 + 2^-40 is just above the f16 tie between 1 and 1 + 2^-10: rounds up.
        // (Truncating the low f64 bits first would see an exact tie and round to even, 1.0.)
        let v = 1.0 + 2f64.powi(-11) + 2f64.powi(-40);
        assert_eq!(f16::from_f64r(v), f16::from_f64(1.0 + 2f64.powi(-10)));
        assert_eq!(f16::from_f64r(1.0 + 2f64.powi(-11)), f16::from_f64(1.0));
        let w = 1.0 + 2f64.powi(-8) + 2f64.powi(-45);
        assert_eq!(bf16::from_f64r(w).to_f(), 1.0 + 2f64.powi(-7));
        assert_eq!(f16::from_f64r(1e300), f16::INFINITY);
        assert_eq!(bf16::from_f64r(-1e300), bf16::NEG_INFINITY);
        assert_eq!(bf16::from_f64r(3.0e38).to_f(), 3.00405527047391e38);
        assert!(f16::from_f64r(f64::NAN).is_nan());
        assert_eq!(f32_round_to_odd(1e-50).to_bits(), 1);
    }

    #[test]
    fn integer_semantics() {
        assert_eq!(Num::div(-3i32, 2), Ok(-1));
        assert_eq!(Num::div(i8::MIN, -1), Ok(i8::MIN));
        assert!(Num::div(1u8, 0).is_err());
        assert_eq!(Num::rem(-4i8, 3, false), Ok(2));
        assert_eq!(Num::rem(7i8, -3, false), Ok(-2));
        assert_eq!(Num::rem(-7i64, 3, true), Ok(-1));
        assert_eq!(Num::rem(7u8, 3, false), Ok(1));
        assert_eq!(Num::abs(i8::MIN), i8::MIN);
        assert_eq!(Num::sign(-5i16), -1);
        assert_eq!(Num::sign(200u8), 1);
        assert_eq!(Num::powi(3i32, 4), 81);
        assert_eq!(Num::powi(2u8, 9), 0);
        assert_eq!(Num::powi(-1i32, -3), -1);
        assert_eq!(Num::powi(2i32, -1), 0);
    }

    #[test]
    fn float_semantics() {
        assert_eq!(Num::rem(-4.0f32, 3.0, false), Ok(2.0));
        assert_eq!(Num::rem(4.0f64, -3.0, false), Ok(-2.0));
        assert!(Num::rem(3.0f64, -3.0, false).unwrap().is_sign_negative());
        assert_eq!(Num::rem(-7.0f64, 3.0, true), Ok(-1.0));
        assert!(Num::max_nan(1.0f32, f32::NAN).is_nan());
        assert!(Num::min_nan(f32::NAN, 1.0f32).is_nan());
        assert_eq!(Num::max_nan(-1.0f64, 2.0), 2.0);
        assert!(Num::sign(-0.0f32).is_sign_negative());
        assert!(Num::sign(f64::NAN).is_nan());
        assert_eq!(Num::sign(-3.5f32), -1.0);
    }
}
