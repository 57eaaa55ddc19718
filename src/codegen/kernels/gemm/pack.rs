//! Run-time packing of B (a matrix, its transpose, or the im2col of a convolution input) into
//! the packed-panel layout of [`crate::codegen::x86::gemm::pack_b`].
//!
//! B's rows are `p = channel * windows + r`: window position `r` (a kernel tap `(ki, kj)` of a
//! conv; the only one of a matrix) of source channel `channel` (a conv input channel; a matrix
//! row). Where each element of a row comes from is known at emit time; the kernel writes one
//! panel (16 columns) of all rows at a time, window by window: for each window and group of
//! four columns one code, decided at compile time, says either "one vector load at this
//! offset from the channel start, lanes outside `mask` zeroed" (interior runs of stride-1 or
//! stride-2 convs, matrix rows, zero padding) or "per-lane gather" (columns that straddle two
//! output rows, transposed matrices, reads that would leave the channel). The codes of the
//! panel's four groups are decoded once per window and kept in registers while the loop runs
//! over channels, so the common path per row is four vector loads, masks and stores, with no
//! lookup but the row's destination offset (which also encodes the K blocking).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, ConstantData, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;
use cranelift_module::DataId;

use super::launch::for_range;
use crate::codegen::kernel::KernelCx;
use crate::codegen::x86::gemm::{panels, NR};

/// Where the packing kernel reads each element of B (see the module docs).
pub(super) struct Gather {
    /// Rows of B (the reduction length), `channels * windows`.
    pub k: usize,
    /// Columns of B.
    pub n: usize,
    /// Window positions per channel.
    pub windows: usize,
    /// Elements between consecutive channels' starts in the source.
    pub chan_stride: usize,
    /// Lane spacing of the vector path (1 or 2 elements), 0 for none.
    pub step: usize,
    /// Per window position and padded column (`panels(n) * 16`): the element offset from the
    /// channel start, or -1 for a zero (padding, or a column past `n`).
    pub lanes: Vec<i32>,
}

/// The constants of one [`Gather`]: codes, lanes, masks.
pub(super) type Tables = [DataId; 3];

impl Gather {
    fn channels(&self) -> usize {
        self.k / self.windows.max(1)
    }

    fn width(&self) -> usize {
        panels(self.n) * NR
    }

    /// Checks the invariants the kernel relies on.
    pub fn validate(&self) -> Result<(), String> {
        if self.windows == 0
            || self.k % self.windows != 0
            || self.lanes.len() != self.windows * self.width()
        {
            return Err("gemm pack: inconsistent gather".into());
        }
        // Table entries are i32: lane offsets, byte offsets of packed rows.
        let limit = (i32::MAX / 16) as usize;
        let packed = crate::codegen::x86::gemm::packed_b_len(self.k, self.n);
        if self.lanes.len().saturating_mul(4) > limit || packed.saturating_mul(4) > limit {
            return Err("gemm pack: sizes too large".into());
        }
        Ok(())
    }

    /// Per window and group of four columns: `(base << 4) | mask` for the vector path (lane
    /// `i` is element `base + i * step` of the channel when bit `i` of `mask` is set, else
    /// zero), or -1 for the per-lane path.
    fn codes(&self) -> Vec<i32> {
        let width = self.width();
        let step = self.step as i64;
        let mut codes = Vec::with_capacity(self.windows * width / 4);
        for w in 0..self.windows {
            for q in 0..width / 4 {
                let l = &self.lanes[w * width + q * 4..w * width + q * 4 + 4];
                codes.push(self.code(l, step));
            }
        }
        codes
    }

    fn code(&self, l: &[i32], step: i64) -> i32 {
        let Some(first) = l.iter().position(|&x| x >= 0) else {
            // All zero: mask 0 at offset 0 (a valid read when the channel has the elements).
            return if (4 * step.max(1)) as usize <= self.chan_stride {
                0
            } else {
                -1
            };
        };
        if step == 0 {
            return -1;
        }
        let base = l[first] as i64 - step * first as i64;
        let mut mask = 0;
        for (i, &x) in l.iter().enumerate() {
            if x >= 0 {
                if x as i64 != base + step * i as i64 {
                    return -1;
                }
                mask |= 1 << i;
            }
        }
        // The vector read covers [base, base + 4 * step) of this channel's elements.
        if base < 0 || base + 4 * step > self.chan_stride as i64 || base >= 1 << 26 {
            return -1;
        }
        ((base << 4) | mask) as i32
    }

    /// Makes the constants the kernels read.
    pub fn tables(&self, cx: &mut KernelCx) -> Result<Tables, String> {
        self.validate()?;
        let as_bytes = |v: &[i32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let masks: Vec<i32> = (0..16)
            .flat_map(|m| (0..4).map(move |i| if m >> i & 1 == 1 { -1 } else { 0 }))
            .collect();
        Ok([
            cx.add_const("pack_codes", as_bytes(&self.codes()))?,
            cx.add_const("pack_lanes", as_bytes(&self.lanes))?,
            cx.add_const("pack_masks", as_bytes(&masks))?,
        ])
    }
}

/// The byte offset of every row of B in a packed block of `np` panels with K blocks of `kc`
/// (from the first panel's row 0), as i32 constant bytes.
pub(super) fn dst_table(k: usize, kc: usize, np: usize) -> Vec<u8> {
    (0..k)
        .flat_map(|p| (((p / kc * np * kc + p % kc) * NR * 4) as i32).to_le_bytes())
        .collect()
}

/// The pointers the panel code reads: the tables of [`Gather::tables`] and a
/// [`dst_table`].
#[derive(Clone, Copy)]
pub(super) struct PackPtrs {
    pub codes: Value,
    pub lanes: Value,
    pub masks: Value,
    pub dst_tab: Value,
}

/// Channels up to which the channel loop is unrolled.
const UNROLL_CHANNELS: usize = 4;

fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// Vector accesses: possibly unaligned (never folded into an aligned SSE operand).
fn vflags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// Emits the packing of one panel: all rows of columns `col0..col0 + 16` (`col0` an i64
/// multiple of 16) from the matrix at `src` into the panel at `dst` (row `p` at
/// `dst + dst_tab[p]`).
pub(super) fn emit_panel(
    b: &mut FunctionBuilder,
    g: &Gather,
    t: PackPtrs,
    src: Value,
    col0: Value,
    dst: Value,
) -> Result<(), String> {
    let width = g.width() as i64;
    let windows = g.windows as i64;
    let chan_bytes = g.chan_stride as i64 * 4;
    let zero = b.ins().iconst(types::I64, 0);
    let wins = b.ins().iconst(types::I64, windows);
    let chans = b.ins().iconst(types::I64, g.channels() as i64);
    // Lanes 0, 2 of each of two vectors (stride 2).
    let evens = (g.step == 2).then(|| {
        let bytes: Vec<u8> = [0u8, 8, 16, 24]
            .iter()
            .flat_map(|&s| (s..s + 4).collect::<Vec<u8>>())
            .collect();
        b.func.dfg.immediates.push(ConstantData::from(bytes))
    });
    for_range(b, zero, wins, 1, false, |b, r| {
        // This window's codes and lanes of the panel: code index r*width/4 + col0/4.
        let ro = b.ins().imul_imm_s(r, width);
        let co = b.ins().iadd(ro, col0);
        let cp = b.ins().iadd(t.codes, co);
        let lo = b.ins().ishl_imm_s(co, 2);
        let lp = b.ins().iadd(t.lanes, lo);
        let codes: Vec<Value> = (0..4)
            .map(|q| b.ins().load(types::I32, flags(), cp, q * 4))
            .collect();
        let any = codes[1..]
            .iter()
            .fold(codes[0], |acc, &c| b.ins().bor(acc, c));
        let all_vec = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, any, 0);
        let slow: Vec<Value> = codes
            .iter()
            .map(|&c| b.ins().icmp_imm_s(IntCC::SignedLessThan, c, 0))
            .collect();
        let offs: Vec<Value> = codes
            .iter()
            .map(|&c| {
                let o = b.ins().sshr_imm_s(c, 4);
                let o = b.ins().sextend(types::I64, o);
                b.ins().ishl_imm_s(o, 2)
            })
            .collect();
        let masks: Vec<Value> = codes
            .iter()
            .map(|&c| {
                let m = b.ins().band_imm_s(c, 15);
                let m = b.ins().uextend(types::I64, m);
                let m = b.ins().ishl_imm_s(m, 4);
                let at = b.ins().iadd(t.masks, m);
                b.ins().load(types::I8X16, flags(), at, 0)
            })
            .collect();
        let r4 = b.ins().ishl_imm_s(r, 2);
        let dt = b.ins().iadd(t.dst_tab, r4);
        // Channel loop: `mixed` branches per group to the per-lane path.
        let channel = |b: &mut FunctionBuilder, mixed: bool| -> Result<(), String> {
            let body = |b: &mut FunctionBuilder, ch: Value| -> Result<(), String> {
                let so = b.ins().imul_imm_s(ch, chan_bytes);
                let s = b.ins().iadd(src, so);
                let po = b.ins().imul_imm_s(ch, windows * 4);
                let pt = b.ins().iadd(dt, po);
                let d = b.ins().load(types::I32, flags(), pt, 0);
                let d = b.ins().sextend(types::I64, d);
                let d = b.ins().iadd(dst, d);
                for q in 0..4 {
                    let (vec_block, join) = if mixed {
                        let lane_block = b.create_block();
                        let vec_block = b.create_block();
                        let join = b.create_block();
                        b.ins().brif(slow[q], lane_block, &[], vec_block, &[]);
                        b.switch_to_block(lane_block);
                        for lane in 0..4 {
                            let i = (q * 4 + lane) as i32;
                            let off = b.ins().load(types::I32, flags(), lp, i * 4);
                            let valid = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, off, 0);
                            let zi = b.ins().iconst(types::I32, 0);
                            let off = b.ins().smax(off, zi);
                            let off = b.ins().sextend(types::I64, off);
                            let off = b.ins().ishl_imm_s(off, 2);
                            let at = b.ins().iadd(s, off);
                            let x = b.ins().load(types::I32, flags(), at, 0);
                            let x = b.ins().select(valid, x, zi);
                            b.ins().store(flags(), x, d, i * 4);
                        }
                        b.ins().jump(join, &[]);
                        (Some(vec_block), Some(join))
                    } else {
                        (None, None)
                    };
                    if let Some(v) = vec_block {
                        b.switch_to_block(v);
                    }
                    let at = b.ins().iadd(s, offs[q]);
                    let v = b.ins().load(types::I8X16, vflags(), at, 0);
                    let v = match evens {
                        Some(imm) => {
                            let v2 = b.ins().load(types::I8X16, vflags(), at, 16);
                            b.ins().shuffle(v, v2, imm)
                        }
                        None => v,
                    };
                    let v = b.ins().band(v, masks[q]);
                    b.ins().store(vflags(), v, d, (q * 16) as i32);
                    if let Some(j) = join {
                        b.ins().jump(j, &[]);
                        b.switch_to_block(j);
                    }
                }
                Ok(())
            };
            // Few channels (a stem conv's 3): unrolled, the window's setup dominates.
            if g.channels() <= UNROLL_CHANNELS {
                for ch in 0..g.channels() {
                    let ch = b.ins().iconst(types::I64, ch as i64);
                    body(b, ch)?;
                }
                Ok(())
            } else {
                for_range(b, zero, chans, 1, false, body)
            }
        };
        let fast = b.create_block();
        let mixed = b.create_block();
        let done = b.create_block();
        b.ins().brif(all_vec, fast, &[], mixed, &[]);
        b.switch_to_block(fast);
        channel(b, false)?;
        b.ins().jump(done, &[]);
        b.switch_to_block(mixed);
        channel(b, true)?;
        b.ins().jump(done, &[]);
        b.switch_to_block(done);
        Ok(())
    })
}
