//! `TensorProto` <-> [`Tensor`]: raw little-endian data, typed fields, external data.
//!
//! Sizes are checked before anything is allocated: the element count must fit the limit and
//! the payload must hold exactly that many elements.

use std::path::{Component, Path, PathBuf};

use graphc_passes::eval::util::{checked_size, MAX_ELEMENTS};
use graphc_passes::ir::{DType, Elem, Tensor};
use half::{bf16, f16};
use onnx_proto::TensorProto;

/// Where external tensor data may be read from: the model's folder, or nowhere (a model read
/// from memory).
#[derive(Clone, Debug)]
pub enum DataDir {
    /// External data is resolved relative to this folder and must stay inside it.
    Folder(PathBuf),
    /// External data is refused.
    None,
}

/// Converts a `TensorProto` to a tensor; the error is a plain reason.
pub fn tensor_from_proto(t: &TensorProto, dir: &DataDir) -> Result<Tensor, String> {
    let code = t.data_type.unwrap_or(0);
    let dtype = DType::from_onnx(code).ok_or_else(|| {
        format!(
            "tensor element type {} ({code}) is not supported",
            DType::onnx_code_name(code)
        )
    })?;
    let mut shape = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        if d < 0 {
            return Err(format!(
                "tensor has a negative dimension {d} in {:?}",
                t.dims
            ));
        }
        shape.push(usize::try_from(d).map_err(|_| format!("dimension {d} is too large"))?);
    }
    let n = checked_size(&shape).map_err(|e| format!("tensor {e}"))?;
    if t.segment.is_some() {
        return Err("segmented tensors are not supported".into());
    }
    let external = t.data_location == Some(onnx_proto::tensor_proto::DataLocation::External as i32);
    let raw: Option<Vec<u8>> = if external {
        Some(read_external(t, dir, n * dtype.size())?)
    } else {
        t.raw_data.clone()
    };
    if let Some(raw) = raw {
        if dtype == DType::String {
            return Err("string tensors cannot use raw_data".into());
        }
        let want = n * dtype.size();
        if raw.len() != want {
            return Err(format!(
                "tensor {:?} of {dtype} needs {want} bytes of data but has {}",
                shape,
                raw.len()
            ));
        }
        return Ok(from_le_bytes(dtype, &shape, &raw));
    }
    let check = |len: usize| -> Result<(), String> {
        if len == n {
            Ok(())
        } else {
            Err(format!(
                "tensor {shape:?} declares {n} elements but has {len} values"
            ))
        }
    };
    Ok(match dtype {
        DType::F32 => {
            check(t.float_data.len())?;
            Tensor::from_vec(&shape, t.float_data.clone())?
        }
        DType::F64 => {
            check(t.double_data.len())?;
            Tensor::from_vec(&shape, t.double_data.clone())?
        }
        DType::I64 => {
            check(t.int64_data.len())?;
            Tensor::from_vec(&shape, t.int64_data.clone())?
        }
        DType::U32 | DType::U64 => {
            check(t.uint64_data.len())?;
            let v: Vec<u64> = t.uint64_data.clone();
            Tensor::from_vec(&shape, v)?.cast(dtype)
        }
        DType::String => {
            check(t.string_data.len())?;
            let v: Vec<String> = t
                .string_data
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect();
            Tensor::from_vec(&shape, v)?
        }
        DType::F16 | DType::BF16 => {
            // Stored as their 16-bit patterns in int32_data.
            check(t.int32_data.len())?;
            if dtype == DType::F16 {
                let v: Vec<f16> = t
                    .int32_data
                    .iter()
                    .map(|&b| f16::from_bits(b as u16))
                    .collect();
                Tensor::from_vec(&shape, v)?
            } else {
                let v: Vec<bf16> = t
                    .int32_data
                    .iter()
                    .map(|&b| bf16::from_bits(b as u16))
                    .collect();
                Tensor::from_vec(&shape, v)?
            }
        }
        DType::I32 | DType::I16 | DType::I8 | DType::U16 | DType::U8 | DType::Bool => {
            check(t.int32_data.len())?;
            Tensor::from_vec(&shape, t.int32_data.clone())?.cast(dtype)
        }
    })
}

/// A tensor from little-endian row-major bytes; `raw` must hold exactly the elements of
/// `shape` and `dtype` must not be a string.
pub fn from_le_bytes(dtype: DType, shape: &[usize], raw: &[u8]) -> Tensor {
    fn conv<T: Elem, const N: usize>(shape: &[usize], raw: &[u8], f: fn([u8; N]) -> T) -> Tensor {
        let v: Vec<T> = raw
            .chunks_exact(N)
            .map(|c| f(c.try_into().expect("chunks_exact yields N bytes")))
            .collect();
        Tensor::from_vec(shape, v).expect("length checked by the caller")
    }
    match dtype {
        DType::F32 => conv(shape, raw, f32::from_le_bytes),
        DType::F64 => conv(shape, raw, f64::from_le_bytes),
        DType::F16 => conv(shape, raw, |b: [u8; 2]| {
            f16::from_bits(u16::from_le_bytes(b))
        }),
        DType::BF16 => conv(shape, raw, |b: [u8; 2]| {
            bf16::from_bits(u16::from_le_bytes(b))
        }),
        DType::I8 => conv(shape, raw, i8::from_le_bytes),
        DType::I16 => conv(shape, raw, i16::from_le_bytes),
        DType::I32 => conv(shape, raw, i32::from_le_bytes),
        DType::I64 => conv(shape, raw, i64::from_le_bytes),
        DType::U8 => conv(shape, raw, u8::from_le_bytes),
        DType::U16 => conv(shape, raw, u16::from_le_bytes),
        DType::U32 => conv(shape, raw, u32::from_le_bytes),
        DType::U64 => conv(shape, raw, u64::from_le_bytes),
        DType::Bool => conv(shape, raw, |b: [u8; 1]| b[0] != 0),
        DType::String => unreachable!("strings are rejected before"),
    }
}

/// Reads external data: `location` relative to the model folder, with optional `offset` and
/// `length`. Absolute paths, `..` and symlinks leaving the folder are refused.
fn read_external(t: &TensorProto, dir: &DataDir, want: usize) -> Result<Vec<u8>, String> {
    let DataDir::Folder(base) = dir else {
        return Err("external data is not available for a model read from memory".into());
    };
    let mut location = None;
    let mut offset = 0u64;
    let mut length = None;
    for kv in &t.external_data {
        let v = kv.value.clone().unwrap_or_default();
        match kv.key.as_deref().unwrap_or("") {
            "location" => location = Some(v),
            "offset" => {
                offset = v
                    .parse()
                    .map_err(|_| format!("external data offset '{v}' is not a number"))?
            }
            "length" => {
                length = Some(
                    v.parse::<u64>()
                        .map_err(|_| format!("external data length '{v}' is not a number"))?,
                )
            }
            _ => {}
        }
    }
    let location = location.ok_or("external data has no location")?;
    let rel = Path::new(&location);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "external data location '{location}' must be a relative path inside the model's folder"
        ));
    }
    let path = base.join(rel);
    let canon_base = base
        .canonicalize()
        .map_err(|e| format!("model folder: {e}"))?;
    let canon = path
        .canonicalize()
        .map_err(|e| format!("external data '{location}': {e}"))?;
    if !canon.starts_with(&canon_base) {
        return Err(format!(
            "external data location '{location}' leaves the model's folder"
        ));
    }
    if let Some(l) = length {
        if l != want as u64 {
            return Err(format!(
                "external data length {l} does not match the {want} bytes the tensor needs"
            ));
        }
    }
    use std::io::{Read, Seek, SeekFrom};
    let mut f =
        std::fs::File::open(&canon).map_err(|e| format!("external data '{location}': {e}"))?;
    let size = f.metadata().map_err(|e| e.to_string())?.len();
    if offset.checked_add(want as u64).is_none_or(|end| end > size) {
        return Err(format!("external data '{location}' is too short: needs {want} bytes at offset {offset}, file has {size}"));
    }
    f.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; want];
    f.read_exact(&mut buf).map_err(|e| e.to_string())?;
    Ok(buf)
}

/// Converts a tensor to a `TensorProto` with raw data (strings use `string_data`).
pub fn tensor_to_proto(t: &Tensor, name: &str) -> TensorProto {
    let mut p = TensorProto {
        name: Some(name.to_string()),
        dims: t.shape().iter().map(|&d| d as i64).collect(),
        data_type: Some(t.dtype() as i32),
        ..Default::default()
    };
    match le_bytes(t) {
        Some(raw) => p.raw_data = Some(raw),
        None => {
            if let Tensor::Str(a) = t {
                p.string_data = a.iter().map(|s| s.as_bytes().to_vec()).collect();
            }
        }
    }
    p
}

/// The elements of `t` as little-endian bytes in row-major order (bool as one byte 0/1);
/// `None` for strings.
pub fn le_bytes(t: &Tensor) -> Option<Vec<u8>> {
    fn bytes<T: Elem, const N: usize>(t: &Tensor, f: fn(&T) -> [u8; N]) -> Vec<u8> {
        t.as_array::<T>()
            .expect("dtype matched")
            .iter()
            .flat_map(f)
            .collect()
    }
    Some(match t {
        Tensor::F32(_) => bytes::<f32, 4>(t, |x| x.to_le_bytes()),
        Tensor::F64(_) => bytes::<f64, 8>(t, |x| x.to_le_bytes()),
        Tensor::F16(_) => bytes::<f16, 2>(t, |x| x.to_bits().to_le_bytes()),
        Tensor::BF16(_) => bytes::<bf16, 2>(t, |x| x.to_bits().to_le_bytes()),
        Tensor::I8(_) => bytes::<i8, 1>(t, |x| x.to_le_bytes()),
        Tensor::I16(_) => bytes::<i16, 2>(t, |x| x.to_le_bytes()),
        Tensor::I32(_) => bytes::<i32, 4>(t, |x| x.to_le_bytes()),
        Tensor::I64(_) => bytes::<i64, 8>(t, |x| x.to_le_bytes()),
        Tensor::U8(_) => bytes::<u8, 1>(t, |x| x.to_le_bytes()),
        Tensor::U16(_) => bytes::<u16, 2>(t, |x| x.to_le_bytes()),
        Tensor::U32(_) => bytes::<u32, 4>(t, |x| x.to_le_bytes()),
        Tensor::U64(_) => bytes::<u64, 8>(t, |x| x.to_le_bytes()),
        Tensor::Bool(_) => bytes::<bool, 1>(t, |x| [*x as u8]),
        Tensor::Str(_) => return None,
    })
}
/// Reads a serialized `TensorProto` file (`.pb`).
pub fn read_pb(path: &Path) -> Result<Tensor, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() as usize > MAX_ELEMENTS.saturating_mul(8) {
        return Err(format!("{}: file is too large", path.display()));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let proto = onnx_proto::decode_tensor(&bytes)
        .map_err(|e| format!("{}: not a serialized TensorProto: {e}", path.display()))?;
    let dir = path
        .parent()
        .map(|p| DataDir::Folder(p.to_path_buf()))
        .unwrap_or(DataDir::None);
    tensor_from_proto(&proto, &dir).map_err(|e| format!("{}: {e}", path.display()))
}
