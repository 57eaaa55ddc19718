//! The Cranelift kernels of the gemm family: the launch that calls a GEMM function per batch
//! and row block, the gather-pack launch that writes B (a matrix, its transpose, or the
//! im2col of a convolution input) in the packed-panel layout of
//! [`crate::codegen::x86::gemm::pack_b`], and the baseline 128-bit GEMM function with the
//! emitted kernels' ABI for CPUs without AVX2/FMA.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, AbiParam, InstBuilder, MemFlagsData, Signature, Value};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, Variable};
use cranelift_module::{DataId, FuncId};

use super::pack::{dst_table, emit_panel, Gather, PackPtrs};
use crate::codegen::kernel::KernelCx;
use crate::codegen::x86::gemm::{panels, Epilogue, GemmSpec, NR};

/// `for i in lo..hi step` (`fit`: only while `i + step <= hi`), `i` an i64.
pub(super) fn for_range(
    b: &mut FunctionBuilder,
    lo: Value,
    hi: Value,
    step: i64,
    fit: bool,
    body: impl FnOnce(&mut FunctionBuilder, Value) -> Result<(), String>,
) -> Result<(), String> {
    let head = b.create_block();
    let inner = b.create_block();
    let exit = b.create_block();
    b.append_block_param(head, types::I64);
    b.ins().jump(head, &[lo.into()]);
    b.switch_to_block(head);
    let i = b.block_params(head)[0];
    let go = if fit {
        let next = b.ins().iadd_imm_s(i, step);
        b.ins().icmp(IntCC::SignedLessThanOrEqual, next, hi)
    } else {
        b.ins().icmp(IntCC::SignedLessThan, i, hi)
    };
    b.ins().brif(go, inner, &[], exit, &[]);
    b.switch_to_block(inner);
    body(b, i)?;
    let next = b.ins().iadd_imm_s(i, step);
    b.ins().jump(head, &[next.into()]);
    b.switch_to_block(exit);
    Ok(())
}

fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// Flags for f32x4 accesses, which may be unaligned: without `aligned`, Cranelift never
/// folds them into an SSE operand that requires alignment (the baseline target has no VEX).
fn vflags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

fn load_ptr(b: &mut FunctionBuilder, bufs: Value, i: usize) -> Value {
    b.ins().load(types::I64, flags(), bufs, (i * 8) as i32)
}

/// The signature of a GEMM function (emitted or baseline): seven pointer-sized arguments
/// `(a, b_packed, c, bias, m_begin, m_end, residual)`.
pub(super) fn gemm_signature() -> Signature {
    let mut sig = Signature::new(CallConv::SystemV);
    sig.params.extend((0..7).map(|_| AbiParam::new(types::I64)));
    sig
}

/// The launch kernel calling `gemm` for every (batch, row block) item of its range:
/// operands `[a, b_packed, c, bias, residual, table]`, where `table` holds four i64 byte
/// offsets per batch (a, b, c and residual, bias) and item `i` is rows
/// `[(i % blocks) * rows, ...+rows)` of batch `i / blocks`. Consecutive items of one batch
/// go into one call.
pub(super) fn call_kernel(
    cx: &mut KernelCx,
    gemm: FuncId,
    blocks: u64,
    rows: u64,
) -> Result<FuncId, String> {
    cx.define_kernel_calling("gemm_rows", &[gemm], |b, p, refs| {
        let ptrs: Vec<Value> = (0..6).map(|i| load_ptr(b, p.bufs, i)).collect();
        let nb = b.ins().iconst(types::I64, blocks as i64);
        let first = b.ins().udiv(p.begin, nb);
        let last = b.ins().iadd_imm_s(p.end, -1);
        let last = b.ins().udiv(last, nb);
        let stop = b.ins().iadd_imm_s(last, 1);
        // An empty range (begin == end) makes first > last when begin is a block start;
        // otherwise lo == hi below and the call does nothing.
        let empty = b
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, p.begin, p.end);
        let stop = b.ins().select(empty, first, stop);
        for_range(b, first, stop, 1, false, |b, bi| {
            let base = b.ins().imul_imm_s(bi, blocks as i64);
            let lo = b.ins().umax(p.begin, base);
            let lo = b.ins().isub(lo, base);
            let top = b.ins().iadd_imm_s(base, blocks as i64);
            let hi = b.ins().umin(p.end, top);
            let hi = b.ins().isub(hi, base);
            let lo = b.ins().imul_imm_s(lo, rows as i64);
            let hi = b.ins().imul_imm_s(hi, rows as i64);
            let t = b.ins().imul_imm_s(bi, 32);
            let t = b.ins().iadd(ptrs[5], t);
            let off: Vec<Value> = (0..4)
                .map(|i| b.ins().load(types::I64, flags(), t, i * 8))
                .collect();
            let a = b.ins().iadd(ptrs[0], off[0]);
            let bp = b.ins().iadd(ptrs[1], off[1]);
            let c = b.ins().iadd(ptrs[2], off[2]);
            let bias = b.ins().iadd(ptrs[3], off[3]);
            let res = b.ins().iadd(ptrs[4], off[2]);
            b.ins().call(refs[0], &[a, bp, c, bias, lo, hi, res]);
            Ok(())
        })?;
        b.ins().return_(&[]);
        Ok(())
    })
}

/// A kernel writing packed matrices: operands `[src, dst, codes, lanes, masks, dst_table]`
/// (the tables made here); item `i` is panel `i % panels` of matrix `i / panels`, read from
/// `src + matrix * src_stride` bytes and written to `dst + matrix * dst_stride` bytes (K
/// blocks of `kc`). Rows past `k` in the last K block are not written (the GEMM never reads
/// them).
pub(super) fn pack_kernel(
    cx: &mut KernelCx,
    gather: &Gather,
    kc: usize,
    src_stride: usize,
    dst_stride: usize,
) -> Result<(FuncId, [DataId; 4]), String> {
    let t = gather.tables(cx)?;
    let np = panels(gather.n);
    let dt = cx.add_const("pack_dst", dst_table(gather.k, kc, np))?;
    let func = cx.define_kernel("gemm_pack", |b, p| {
        let src0 = load_ptr(b, p.bufs, 0);
        let dst0 = load_ptr(b, p.bufs, 1);
        let ptrs = PackPtrs {
            codes: load_ptr(b, p.bufs, 2),
            lanes: load_ptr(b, p.bufs, 3),
            masks: load_ptr(b, p.bufs, 4),
            dst_tab: load_ptr(b, p.bufs, 5),
        };
        let npv = b.ins().iconst(types::I64, np as i64);
        for_range(b, p.begin, p.end, 1, false, |b, item| {
            let mat = b.ins().udiv(item, npv);
            let mnp = b.ins().imul(mat, npv);
            let j = b.ins().isub(item, mnp);
            let so = b.ins().imul_imm_s(mat, src_stride as i64);
            let src = b.ins().iadd(src0, so);
            let d = b.ins().imul_imm_s(mat, dst_stride as i64);
            let dj = b.ins().imul_imm_s(j, (kc * NR * 4) as i64);
            let d = b.ins().iadd(d, dj);
            let dst = b.ins().iadd(dst0, d);
            let col0 = b.ins().imul_imm_s(j, NR as i64);
            emit_panel(b, gather, ptrs, src, col0, dst)
        })?;
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok((func, [t[0], t[1], t[2], dt]))
}

/// One kind of column chunk of [`chunk_kernel`]: its GEMM (specialized for the chunk's
/// width) and, when B is packed at run time, its panel count and K block.
pub(super) struct ChunkKind {
    pub gemm: FuncId,
    pub panels: usize,
    pub kc: usize,
}

/// How [`chunk_kernel`] cuts the product.
pub(super) struct Chunks {
    /// Column chunks per batch; all but the last are `full`, the last is `tail` if present.
    pub count: usize,
    /// Columns of a full chunk (a multiple of 16).
    pub cols: usize,
    /// Row blocks per chunk (1 when B is packed here: each item packs its chunk once).
    pub blocks: usize,
    /// Rows per row block.
    pub rows: usize,
    /// The GEMM's bias is per column (offset with the chunk).
    pub col_bias: bool,
    /// B packed at run time by each item into scratch (`bytes` per item), or constant with
    /// chunks `stride` bytes apart.
    pub gather: Option<(Gather, usize)>,
    pub stride: usize,
    pub full: ChunkKind,
    pub tail: Option<ChunkKind>,
}

/// The launch kernel over (batch, column chunk, row block) items: operands `[a, b, c, bias,
/// residual, table, scratch, codes, lanes, masks, dst_full, dst_tail]` (`table` as in
/// [`call_kernel`], its B offset the source offset when B is gathered). Each item calls the
/// chunk's GEMM on its rows with C, residual (and a column bias) offset to the chunk's first
/// column; with a gather it first packs the chunk into its own scratch slot, so the packed
/// chunk is still in cache when the GEMM reads it.
pub(super) fn chunk_kernel(cx: &mut KernelCx, ch: &Chunks) -> Result<FuncId, String> {
    let mut callees = vec![ch.full.gemm];
    if let Some(t) = &ch.tail {
        callees.push(t.gemm);
    }
    cx.define_kernel_calling("gemm_chunks", &callees, |b, p, refs| {
        let ptrs: Vec<Value> = (0..12).map(|i| load_ptr(b, p.bufs, i)).collect();
        let per_batch = (ch.count * ch.blocks) as i64;
        for_range(b, p.begin, p.end, 1, false, |b, item| {
            let pb = b.ins().iconst(types::I64, per_batch);
            let bi = b.ins().udiv(item, pb);
            let t0 = b.ins().imul(bi, pb);
            let rem = b.ins().isub(item, t0);
            let nbk = b.ins().iconst(types::I64, ch.blocks as i64);
            let c_i = b.ins().udiv(rem, nbk);
            let t1 = b.ins().imul(c_i, nbk);
            let rb = b.ins().isub(rem, t1);
            let t = b.ins().imul_imm_s(bi, 32);
            let t = b.ins().iadd(ptrs[5], t);
            let off: Vec<Value> = (0..4)
                .map(|i| b.ins().load(types::I64, flags(), t, i * 8))
                .collect();
            let a = b.ins().iadd(ptrs[0], off[0]);
            let col = b.ins().imul_imm_s(c_i, (ch.cols * 4) as i64);
            let c_off = b.ins().iadd(off[2], col);
            let c = b.ins().iadd(ptrs[2], c_off);
            let res = b.ins().iadd(ptrs[4], c_off);
            let bias = b.ins().iadd(ptrs[3], off[3]);
            let bias = if ch.col_bias {
                b.ins().iadd(bias, col)
            } else {
                bias
            };
            let lo = b.ins().imul_imm_s(rb, ch.rows as i64);
            let hi = b.ins().iadd_imm_s(lo, ch.rows as i64);
            let bsrc = b.ins().iadd(ptrs[1], off[1]);
            let emit = |b: &mut FunctionBuilder, kind: &ChunkKind, f, dst_tab| {
                let bp = match &ch.gather {
                    Some((g, bytes)) => {
                        let slot = b.ins().imul_imm_s(item, *bytes as i64);
                        let dst = b.ins().iadd(ptrs[6], slot);
                        let pk = PackPtrs {
                            codes: ptrs[7],
                            lanes: ptrs[8],
                            masks: ptrs[9],
                            dst_tab,
                        };
                        let zero = b.ins().iconst(types::I64, 0);
                        let np = b.ins().iconst(types::I64, kind.panels as i64);
                        let first = b.ins().imul_imm_s(c_i, ch.cols as i64);
                        for_range(b, zero, np, 1, false, |b, jj| {
                            let col0 = b.ins().imul_imm_s(jj, NR as i64);
                            let col0 = b.ins().iadd(col0, first);
                            let d = b.ins().imul_imm_s(jj, (kind.kc * NR * 4) as i64);
                            let d = b.ins().iadd(dst, d);
                            emit_panel(b, g, pk, bsrc, col0, d)
                        })?;
                        dst
                    }
                    None => {
                        let o = b.ins().imul_imm_s(c_i, ch.stride as i64);
                        b.ins().iadd(bsrc, o)
                    }
                };
                b.ins().call(f, &[a, bp, c, bias, lo, hi, res]);
                Ok::<(), String>(())
            };
            match &ch.tail {
                None => emit(b, &ch.full, refs[0], ptrs[10])?,
                Some(tail) => {
                    let is_tail = b.ins().icmp_imm_s(IntCC::Equal, c_i, (ch.count - 1) as i64);
                    let tb = b.create_block();
                    let fb = b.create_block();
                    let join = b.create_block();
                    b.ins().brif(is_tail, tb, &[], fb, &[]);
                    b.switch_to_block(tb);
                    emit(b, tail, refs[1], ptrs[11])?;
                    b.ins().jump(join, &[]);
                    b.switch_to_block(fb);
                    emit(b, &ch.full, refs[0], ptrs[10])?;
                    b.ins().jump(join, &[]);
                    b.switch_to_block(join);
                }
            }
            Ok(())
        })?;
        b.ins().return_(&[]);
        Ok(())
    })
}

/// Rows of the baseline tile.
pub(super) const BASE_ROWS: usize = 4;

/// A Cranelift function with the emitted kernels' ABI and semantics (see
/// [`crate::codegen::x86::gemm`]) in 128-bit SIMD, for targets without AVX2/FMA: tiles of 4
/// (then 1) rows × 8 columns, all of K in registers, `fmul` + `fadd` (no FMA), the same
/// packed B layout.
pub(super) fn baseline_gemm(cx: &mut KernelCx, spec: &GemmSpec) -> Result<FuncId, String> {
    spec.validate()?;
    let spec = spec.clone();
    cx.define_function("gemm_base", gemm_signature(), &[], move |b, params, _| {
        let [a, bp, c, bias, m_begin, m_end, res] = params[..] else {
            return Err("gemm signature".into());
        };
        let mv = b.ins().iconst(types::I64, spec.m as i64);
        let m_end = b.ins().umin(m_end, mv);
        let row = b.declare_var(types::I64);
        b.def_var(row, m_begin);
        for tile_rows in [BASE_ROWS, 1] {
            let start = b.use_var(row);
            let head = b.create_block();
            let inner = b.create_block();
            let exit = b.create_block();
            b.ins().jump(head, &[]);
            b.switch_to_block(head);
            let i = b.use_var(row);
            let next = b.ins().iadd_imm_s(i, tile_rows as i64);
            let go = b.ins().icmp(IntCC::SignedLessThanOrEqual, next, m_end);
            b.ins().brif(go, inner, &[], exit, &[]);
            b.switch_to_block(inner);
            let i = b.use_var(row);
            base_rows(b, &spec, tile_rows, [a, bp, c, bias, res], i)?;
            let next = b.ins().iadd_imm_s(i, tile_rows as i64);
            b.def_var(row, next);
            b.ins().jump(head, &[]);
            b.switch_to_block(exit);
            let _ = start;
        }
        b.ins().return_(&[]);
        Ok(())
    })
}

/// All columns of `rows` rows starting at `i`.
fn base_rows(
    b: &mut FunctionBuilder,
    spec: &GemmSpec,
    rows: usize,
    ptrs: [Value; 5],
    i: Value,
) -> Result<(), String> {
    let full = spec.n / 8;
    let zero = b.ins().iconst(types::I64, 0);
    if full > 0 {
        let fv = b.ins().iconst(types::I64, full as i64);
        for_range(b, zero, fv, 1, false, |b, h| {
            base_tile(b, spec, rows, ptrs, i, h, 8)
        })?;
    }
    if spec.n % 8 != 0 {
        let h = b.ins().iconst(types::I64, full as i64);
        base_tile(b, spec, rows, ptrs, i, h, spec.n % 8)?;
    }
    Ok(())
}

/// One `rows × 8` tile at row `i`, half panel `h` (columns `8h..8h+valid`).
fn base_tile(
    b: &mut FunctionBuilder,
    spec: &GemmSpec,
    rows: usize,
    ptrs: [Value; 5],
    i: Value,
    h: Value,
    valid: usize,
) -> Result<(), String> {
    let [a, bp, c, bias, res] = ptrs;
    let (a_row, a_k) = if spec.trans_a {
        (4, spec.lda as i64 * 4)
    } else {
        (spec.lda as i64 * 4, 4)
    };
    let kc = spec.kc();
    let np = panels(spec.n);
    let zero4 = {
        let z = b.ins().f32const(0.0);
        b.ins().splat(types::F32X4, z)
    };
    let accs: Vec<Variable> = (0..rows * 2)
        .map(|_| {
            let v = b.declare_var(types::F32X4);
            b.def_var(v, zero4);
            v
        })
        .collect();
    // Byte offset of this half panel within a K block of panels: (h/2)*kc*64 + (h%2)*32.
    let panel = b.ins().ushr_imm_s(h, 1);
    let half = b.ins().band_imm_s(h, 1);
    let po = b.ins().imul_imm_s(panel, (kc * NR * 4) as i64);
    let ho = b.ins().imul_imm_s(half, 32);
    let col_b = b.ins().iadd(po, ho);
    let ai = b.ins().imul_imm_s(i, a_row);
    let a_rows = b.ins().iadd(a, ai);
    for kb in 0..spec.k.div_ceil(kc) {
        let len = kc.min(spec.k - kb * kc);
        let b0 = b.ins().iadd_imm_s(col_b, (kb * np * kc * NR * 4) as i64);
        let b0 = b.ins().iadd(bp, b0);
        let a0 = b.ins().iadd_imm_s(a_rows, kb as i64 * kc as i64 * a_k);
        let zero = b.ins().iconst(types::I64, 0);
        let lv = b.ins().iconst(types::I64, len as i64);
        for_range(b, zero, lv, 1, false, |b, p| {
            let bo = b.ins().imul_imm_s(p, (NR * 4) as i64);
            let bpp = b.ins().iadd(b0, bo);
            let x0 = b.ins().load(types::F32X4, vflags(), bpp, 0);
            let x1 = b.ins().load(types::F32X4, vflags(), bpp, 16);
            let ao = b.ins().imul_imm_s(p, a_k);
            let ap = b.ins().iadd(a0, ao);
            for t in 0..rows {
                let s = b
                    .ins()
                    .load(types::F32, flags(), ap, (t as i64 * a_row) as i32);
                let s = b.ins().splat(types::F32X4, s);
                for (v, x) in [x0, x1].into_iter().enumerate() {
                    let acc = b.use_var(accs[t * 2 + v]);
                    let prod = b.ins().fmul(s, x);
                    let sum = b.ins().fadd(acc, prod);
                    b.def_var(accs[t * 2 + v], sum);
                }
            }
            Ok(())
        })?;
    }
    // Epilogue.
    let ldc = (spec.ldc * 4) as i64;
    let ci = b.ins().imul_imm_s(i, ldc);
    let col = b.ins().imul_imm_s(h, 32);
    let c_off = b.ins().iadd(ci, col);
    let c_at = b.ins().iadd(c, c_off);
    let r_at = b.ins().iadd(res, c_off);
    let bias_col = b.ins().iadd(bias, col);
    let bi = b.ins().ishl_imm_s(i, 2);
    let bias_row = b.ins().iadd(bias, bi);
    let (lo, hi) = match spec.act {
        Epilogue::None => (None, None),
        Epilogue::Relu => (Some(0.0f32), None),
        Epilogue::Clip { lo, hi } => (Some(lo), Some(hi)),
    };
    for t in 0..rows {
        let row_bias = if spec.row_bias {
            Some(b.ins().load(types::F32, flags(), bias_row, (t * 4) as i32))
        } else {
            None
        };
        for v in 0..2 {
            let lanes = valid.saturating_sub(v * 4).min(4);
            if lanes == 0 {
                continue;
            }
            let disp = (t as i64 * ldc + v as i64 * 16) as i32;
            let acc = b.use_var(accs[t * 2 + v]);
            if lanes == 4 {
                let mut x = acc;
                if spec.accumulate {
                    let y = b.ins().load(types::F32X4, vflags(), c_at, disp);
                    x = b.ins().fadd(x, y);
                }
                if spec.bias {
                    let y = b
                        .ins()
                        .load(types::F32X4, vflags(), bias_col, v as i32 * 16);
                    x = b.ins().fadd(x, y);
                }
                if let Some(rb) = row_bias {
                    let y = b.ins().splat(types::F32X4, rb);
                    x = b.ins().fadd(x, y);
                }
                if spec.residual {
                    let y = b.ins().load(types::F32X4, vflags(), r_at, disp);
                    x = b.ins().fadd(x, y);
                }
                if let Some(lo) = lo {
                    let l = b.ins().f32const(lo);
                    let l = b.ins().splat(types::F32X4, l);
                    x = b.ins().fmax(x, l);
                }
                if let Some(hi) = hi {
                    let l = b.ins().f32const(hi);
                    let l = b.ins().splat(types::F32X4, l);
                    x = b.ins().fmin(x, l);
                }
                b.ins().store(vflags(), x, c_at, disp);
            } else {
                for lane in 0..lanes {
                    let d = disp + lane as i32 * 4;
                    let mut x = b.ins().extractlane(acc, lane as u8);
                    if spec.accumulate {
                        let y = b.ins().load(types::F32, flags(), c_at, d);
                        x = b.ins().fadd(x, y);
                    }
                    if spec.bias {
                        let y =
                            b.ins()
                                .load(types::F32, flags(), bias_col, (v * 16 + lane * 4) as i32);
                        x = b.ins().fadd(x, y);
                    }
                    if let Some(rb) = row_bias {
                        x = b.ins().fadd(x, rb);
                    }
                    if spec.residual {
                        let y = b.ins().load(types::F32, flags(), r_at, d);
                        x = b.ins().fadd(x, y);
                    }
                    if let Some(lo) = lo {
                        let l = b.ins().f32const(lo);
                        x = b.ins().fmax(x, l);
                    }
                    if let Some(hi) = hi {
                        let l = b.ins().f32const(hi);
                        x = b.ins().fmin(x, l);
                    }
                    b.ins().store(flags(), x, c_at, d);
                }
            }
        }
    }
    Ok(())
}
