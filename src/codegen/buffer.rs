//! Byte buffers aligned to 64 bytes (a cache line; what kernels may assume of operands), and
//! string tensors as arrays of C string pointers.

use std::ffi::{CStr, CString};

use graphc_passes::ir::Tensor;

/// A 64-byte aligned byte buffer.
pub struct AlignedBuf {
    words: Vec<u128>,
    len: usize,
}

impl AlignedBuf {
    /// `len` bytes, all `fill`.
    pub fn new(len: usize, fill: u8) -> AlignedBuf {
        let mut words = vec![0u128; len.div_ceil(16) + 4];
        let off = Self::offset(&words);
        let bytes = Self::bytes_of(&mut words);
        bytes[off..].fill(fill);
        AlignedBuf { words, len }
    }

    /// [`new`](Self::new), or an error when the memory cannot be had.
    pub fn try_new(len: usize, fill: u8) -> Result<AlignedBuf, String> {
        let words_len = len.div_ceil(16) + 4;
        let mut words: Vec<u128> = Vec::new();
        words
            .try_reserve_exact(words_len)
            .map_err(|_| format!("cannot allocate {len} bytes"))?;
        words.resize(words_len, 0);
        let off = Self::offset(&words);
        Self::bytes_of(&mut words)[off..].fill(fill);
        Ok(AlignedBuf { words, len })
    }

    /// A copy of `data`.
    pub fn from(data: &[u8]) -> AlignedBuf {
        let mut b = AlignedBuf::new(data.len(), 0);
        b.bytes_mut().copy_from_slice(data);
        b
    }

    fn offset(words: &[u128]) -> usize {
        (64 - (words.as_ptr() as usize % 64)) % 64
    }

    fn bytes_of(words: &mut [u128]) -> &mut [u8] {
        // SAFETY: u128 has no invalid bit patterns and u8 has alignment 1.
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), words.len() * 16) }
    }

    /// The bytes.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let off = Self::offset(&self.words);
        let len = self.len;
        &mut Self::bytes_of(&mut self.words)[off..off + len]
    }

    /// The address of the first byte.
    pub fn ptr(&mut self) -> *mut u8 {
        self.bytes_mut().as_mut_ptr()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A string tensor as compiled code takes it: NUL-terminated copies of its elements (`owned`,
/// which must outlive every use of the pointers) and the row-major array of pointers to them
/// as little-endian bytes. Errors on an element with a NUL byte inside or a tensor that holds
/// no strings.
pub fn c_string_array(t: &Tensor) -> Result<(Vec<CString>, Vec<u8>), String> {
    let a = t
        .as_array::<String>()
        .ok_or_else(|| format!("expected strings, got {}", t.dtype()))?;
    let owned: Vec<CString> = a
        .iter()
        .map(|s| {
            CString::new(s.as_bytes())
                .map_err(|_| format!("the string {s:?} has a NUL byte inside"))
        })
        .collect::<Result<_, _>>()?;
    let pointers = owned
        .iter()
        .flat_map(|c| (c.as_ptr() as usize as u64).to_le_bytes())
        .collect();
    Ok((owned, pointers))
}

/// The string tensor of `dims` whose elements the row-major pointer array at `p` points at.
///
/// # Safety
/// `p` points at `dims.product()` pointers, each to a NUL-terminated byte string.
pub unsafe fn read_c_string_array(p: *const u8, dims: &[usize]) -> Result<Tensor, String> {
    let n: usize = dims.iter().product();
    let v: Vec<String> = (0..n)
        .map(|i| {
            // SAFETY: as the caller promises.
            unsafe {
                let s = std::ptr::read_unaligned(p.cast::<*const std::ffi::c_char>().add(i));
                CStr::from_ptr(s).to_string_lossy().into_owned()
            }
        })
        .collect();
    Tensor::from_vec(dims, v)
}
