//! `.npy` files <-> [`Tensor`], through npyz.
//!
//! Numeric and bool arrays in C order, little or big endian; strings as numpy `U` arrays.

use std::io::{BufReader, Write};
use std::path::Path;

use graphc_passes::eval::util::checked_size;
use graphc_passes::ir::{DType, Tensor};
use half::{bf16, f16};
use npyz::{TypeChar, WriterBuilder};

/// Reads an `.npy` file. Errors name the file and the reason.
pub fn read_npy(path: &Path) -> Result<Tensor, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let npy = npyz::NpyFile::new(BufReader::new(f))
        .map_err(|e| format!("{}: not a .npy file ({e})", path.display()))?;
    let shape: Vec<usize> = npy
        .shape()
        .iter()
        .map(|&d| {
            usize::try_from(d)
                .map_err(|_| format!("{}: dimension {d} is too large", path.display()))
        })
        .collect::<Result<_, _>>()?;
    checked_size(&shape).map_err(|e| format!("{}: array {e}", path.display()))?;
    if npy.order() == npyz::Order::Fortran && shape.len() > 1 {
        return Err(format!(
            "{}: Fortran-ordered arrays are not supported; save with C order",
            path.display()
        ));
    }
    let npyz::DType::Plain(ts) = npy.dtype() else {
        return Err(format!(
            "{}: structured arrays are not supported",
            path.display()
        ));
    };
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let size = ts.size_field();
    let t = match (ts.type_char(), size) {
        (TypeChar::Float, 4) => Tensor::from_vec(&shape, npy.into_vec::<f32>().map_err(err)?),
        (TypeChar::Float, 8) => Tensor::from_vec(&shape, npy.into_vec::<f64>().map_err(err)?),
        (TypeChar::Float, 2) => Tensor::from_vec(&shape, npy.into_vec::<f16>().map_err(err)?),
        (TypeChar::Int, 1) => Tensor::from_vec(&shape, npy.into_vec::<i8>().map_err(err)?),
        (TypeChar::Int, 2) => Tensor::from_vec(&shape, npy.into_vec::<i16>().map_err(err)?),
        (TypeChar::Int, 4) => Tensor::from_vec(&shape, npy.into_vec::<i32>().map_err(err)?),
        (TypeChar::Int, 8) => Tensor::from_vec(&shape, npy.into_vec::<i64>().map_err(err)?),
        (TypeChar::Uint, 1) => Tensor::from_vec(&shape, npy.into_vec::<u8>().map_err(err)?),
        (TypeChar::Uint, 2) => Tensor::from_vec(&shape, npy.into_vec::<u16>().map_err(err)?),
        (TypeChar::Uint, 4) => Tensor::from_vec(&shape, npy.into_vec::<u32>().map_err(err)?),
        (TypeChar::Uint, 8) => Tensor::from_vec(&shape, npy.into_vec::<u64>().map_err(err)?),
        (TypeChar::Bool, 1) => Tensor::from_vec(&shape, npy.into_vec::<bool>().map_err(err)?),
        (TypeChar::UnicodeStr, _) | (TypeChar::ByteStr, _) => {
            Tensor::from_vec(&shape, npy.into_vec::<String>().map_err(err)?)
        }
        _ => {
            return Err(format!(
                "{}: numpy type '{ts}' is not supported",
                path.display()
            ))
        }
    };
    t.map_err(|e| format!("{}: {e}", path.display()))
}

/// Encodes a tensor as `.npy` bytes. bfloat16 has no numpy type and is written as float32.
pub fn npy_bytes(t: &Tensor) -> Result<Vec<u8>, String> {
    let shape: Vec<u64> = t.shape().iter().map(|&d| d as u64).collect();
    let mut out = Vec::new();
    fn write<T: npyz::AutoSerialize + Clone>(
        out: &mut Vec<u8>,
        shape: &[u64],
        data: impl Iterator<Item = T>,
    ) -> std::io::Result<()> {
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(shape)
            .writer(out)
            .begin_nd()?;
        w.extend(data)?;
        w.finish()
    }
    let r = match t {
        Tensor::F32(a) => write(&mut out, &shape, a.iter().copied()),
        Tensor::F64(a) => write(&mut out, &shape, a.iter().copied()),
        Tensor::F16(a) => write(&mut out, &shape, a.iter().copied()),
        Tensor::BF16(a) => write(&mut out, &shape, a.iter().map(|x: &bf16| x.to_f32())),
        Tensor::I8(a) => write(&mut out, &shape, a.iter().copied()),
        Tensor::I16(a) => write(&mut out, &shape, a.iter().copied()),
        Tensor::I32(a) => write(&mut out, &shape, a.iter().copied()),
        Tensor::I64(a) => write(&mut out, &shape, a.iter().copied()),
        Tensor::U8(a) => write(&mut out, &shape, a.iter().copied()),
        Tensor::U16(a) => write(&mut out, &shape, a.iter().copied()),
        Tensor::U32(a) => write(&mut out, &shape, a.iter().copied()),
        Tensor::U64(a) => write(&mut out, &shape, a.iter().copied()),
        Tensor::Bool(a) => write(&mut out, &shape, a.iter().copied()),
        Tensor::Str(a) => {
            let width = a
                .iter()
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
                .max(1);
            let ts: npyz::TypeStr = format!("<U{width}").parse().map_err(|e| format!("{e}"))?;
            (|| {
                let mut w = npyz::WriteOptions::<String>::new()
                    .dtype(npyz::DType::Plain(ts))
                    .shape(&shape)
                    .writer(&mut out)
                    .begin_nd()?;
                w.extend(a.iter().cloned())?;
                w.finish()
            })()
        }
    };
    r.map_err(|e| format!("cannot encode {} tensor as .npy: {e}", t.dtype()))?;
    Ok(out)
}

/// Writes a tensor to an `.npy` file, atomically (temporary file, then rename).
pub fn write_npy(path: &Path, t: &Tensor) -> Result<(), String> {
    let bytes = npy_bytes(t)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|s| s.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{}: {e}", path.display()));
    }
    Ok(())
}

/// Whether `dtype` survives an `.npy` round trip unchanged.
pub fn npy_exact(dtype: DType) -> bool {
    dtype != DType::BF16
}
