//! How each element type is written and read in the text format: decimal integers, shortest
//! round-trip floats (with `NaN(0x<bits>)` for non-default NaNs), `true`/`false`, quoted
//! strings.

use std::fmt::Write;

use half::{bf16, f16};

use super::parse::{ParseError, Parser};
use crate::ir::tensor::Elem;

/// An element type the text format can write and read back bit-exactly.
pub(super) trait TextElem: Elem {
    /// Appends the element's text.
    fn write(&self, out: &mut String);
    /// Reads one element at the parser's position.
    fn read(p: &mut Parser<'_>) -> Result<Self, ParseError>;
}

macro_rules! int_text {
    ($($t:ty),*) => {$(
        impl TextElem for $t {
            fn write(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
            fn read(p: &mut Parser<'_>) -> Result<Self, ParseError> {
                let (pos, tok) = p.number()?;
                let v: i128 = tok
                    .parse()
                    .map_err(|_| p.err_at(pos, format!("expected an integer, found '{tok}'")))?;
                <$t>::try_from(v).map_err(|_| {
                    p.err_at(pos, format!("value {v} out of range for {}", <$t as Elem>::DTYPE))
                })
            }
        }
    )*};
}
int_text!(i8, i16, i32, i64, u8, u16, u32, u64);

macro_rules! float_text {
    ($t:ty, $bits:ty, $show:expr, $from_str:expr) => {
        impl TextElem for $t {
            fn write(&self, out: &mut String) {
                let text = format!("{:?}", $show(*self));
                match $from_str(&text) {
                    Some(back) if <$t>::to_bits(back) == self.to_bits() => out.push_str(&text),
                    _ => {
                        let width = 2 * std::mem::size_of::<$bits>();
                        let _ = write!(out, "NaN(0x{:0width$x})", self.to_bits());
                    }
                }
            }
            fn read(p: &mut Parser<'_>) -> Result<Self, ParseError> {
                let (pos, tok) = p.number()?;
                if let Some(hex) = tok.strip_prefix("NaN(0x").and_then(|s| s.strip_suffix(')')) {
                    let bits = <$bits>::from_str_radix(hex, 16).map_err(|_| {
                        p.err_at(
                            pos,
                            format!("bad NaN bits '{tok}' for {}", <$t as Elem>::DTYPE),
                        )
                    })?;
                    return Ok(<$t>::from_bits(bits));
                }
                $from_str(tok)
                    .ok_or_else(|| p.err_at(pos, format!("expected a number, found '{tok}'")))
            }
        }
    };
}
float_text!(f32, u32, |x: f32| x, |s: &str| s.parse::<f32>().ok());
float_text!(f64, u64, |x: f64| x, |s: &str| s.parse::<f64>().ok());
float_text!(f16, u16, |x: f16| x.to_f32(), |s: &str| s
    .parse::<f32>()
    .ok()
    .map(f16::from_f32));
float_text!(bf16, u16, |x: bf16| x.to_f32(), |s: &str| s
    .parse::<f32>()
    .ok()
    .map(bf16::from_f32));

impl TextElem for bool {
    fn write(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
    fn read(p: &mut Parser<'_>) -> Result<Self, ParseError> {
        let pos = p.pos();
        match p.ident() {
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            _ => Err(p.err_at(
                pos,
                format!("expected true or false, found {}", p.found_at(pos)),
            )),
        }
    }
}

impl TextElem for String {
    fn write(&self, out: &mut String) {
        write_string(self, out);
    }
    fn read(p: &mut Parser<'_>) -> Result<Self, ParseError> {
        p.string()
    }
}

/// Appends `s` double-quoted, with escapes.
pub(super) fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Runs `$body` with `$T` bound to the Rust element type of the `DType` `$dt`.
macro_rules! with_elem {
    ($dt:expr, $T:ident => $body:expr) => {{
        use $crate::ir::types::DType;
        match $dt {
            DType::F32 => {
                type $T = f32;
                $body
            }
            DType::F64 => {
                type $T = f64;
                $body
            }
            DType::F16 => {
                type $T = half::f16;
                $body
            }
            DType::BF16 => {
                type $T = half::bf16;
                $body
            }
            DType::I8 => {
                type $T = i8;
                $body
            }
            DType::I16 => {
                type $T = i16;
                $body
            }
            DType::I32 => {
                type $T = i32;
                $body
            }
            DType::I64 => {
                type $T = i64;
                $body
            }
            DType::U8 => {
                type $T = u8;
                $body
            }
            DType::U16 => {
                type $T = u16;
                $body
            }
            DType::U32 => {
                type $T = u32;
                $body
            }
            DType::U64 => {
                type $T = u64;
                $body
            }
            DType::Bool => {
                type $T = bool;
                $body
            }
            DType::String => {
                type $T = String;
                $body
            }
        }
    }};
}
pub(super) use with_elem;
