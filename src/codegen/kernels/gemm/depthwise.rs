//! Depthwise convolution (`group == Cin == Cout`, e.g. MobileNet's 3×3 stride 1 and 2) as its
//! own f32x4 kernel, instead of one GEMM of a single row per channel.
//!
//! A work item is one output row of one channel. The row's structure is known at emit time:
//! the output columns whose taps all read inside the input row (and, for stride 2, whose
//! two-vector reads stay inside it) are computed four at a time with one vector load per tap
//! (two and a `shufps` for stride 2): straight-line code for rows of up to `FULL_UNROLL`
//! blocks (the weight splats then stay in registers), else a loop of four blocks per step.
//! Blocks whose taps partly read padding (the row's edges, and its last four outputs when the
//! width is not a multiple of 4 and there is no residual) are vector blocks too, with loads
//! clamped into the row, a lane shuffle and a zero mask; the remaining outputs (tails with a
//! residual, rows narrower than 4 × stride) are unrolled scalar code that skips the padding
//! taps. Rows whose taps all fall inside the input (known range) run without checks; border
//! rows test each kernel row's validity. Bias, residual and Relu/Clip are applied before the
//! one store; other activations run as the usual in-place launch after it (see `super::lower`).

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, ConstantData, Endianness, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::{FunctionBuilder, Variable};
use graphc_passes::ir::fused::Activation;
use graphc_passes::ir::{Graph, NodeId};

use super::launch::for_range;
use super::{conv_geom, dims, epilogue, input, same_layout, ConvAttrs, ConvGeom};
use crate::codegen::kernel::{KernelCx, Lowered, Operand};
use crate::codegen::x86::gemm::Epilogue;

/// Most scalar (border) outputs × taps unrolled per row; larger rows are declined.
const MAX_SCALAR_TAPS: usize = 8192;

/// One tap's contribution: `(builder, ki, kj, input row, accumulator, block) -> new
/// accumulator`, `None` for a tap that reads padding.
type Tap<'a> = &'a dyn Fn(&mut FunctionBuilder, usize, usize, Value, Value, usize) -> Option<Value>;

/// Rows of at most this many vector blocks are straight-line code (no block loop).
const FULL_UNROLL: usize = 32;

/// Vector blocks of four outputs per loop step.
const UNROLL: usize = 4;

fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

fn vflags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// The kernel for a depthwise Conv/FusedConv, or `None` when the node is not one (or has
/// something this kernel does not handle).
pub(super) fn lower(
    cx: &mut KernelCx,
    g: &Graph,
    node: NodeId,
    at: &ConvAttrs,
    act: Activation,
) -> Result<Option<Lowered>, String> {
    let Some(geo) = conv_geom(g, node, at) else {
        return Ok(None);
    };
    if geo.groups != geo.cin || geo.co != geo.cin || geo.groups < 2 {
        return Ok(None);
    }
    let Some(act) = epilogue(&act) else {
        return Ok(None);
    };
    let bias = match input(g, node, 2) {
        Some(v) if dims(g, v).as_deref() != Some(&[geo.co][..]) => return Ok(None),
        Some(_) => true,
        None => false,
    };
    let residual = match input(g, node, 3) {
        Some(v) => match dims(g, v) {
            Some(d) if same_layout(&d, &geo.out) => true,
            _ => return Ok(None),
        },
        None => false,
    };
    let Some(row) = RowPlan::new(&geo, residual) else {
        return Ok(None);
    };
    let fma = cx.target.avx2_fma;
    let items = (geo.batch * geo.co * geo.oh) as u64;
    let func = cx.define_kernel("depthwise", |b, p| {
        emit(b, p, &geo, &row, bias, residual, act, fma)
    })?;
    let opt = |present: bool, i: usize| {
        if present {
            Operand::Input(i)
        } else {
            Operand::Output(0)
        }
    };
    Ok(Some(Lowered::one(
        func,
        vec![
            Operand::Input(0),
            Operand::Input(1),
            Operand::Output(0),
            opt(bias, 2),
            opt(residual, 3),
        ],
        (items, (256 / geo.ow.max(1)).max(1) as u64),
        "conv.depthwise",
        0,
    )))
}

/// The compile-time structure of an output row.
struct RowPlan {
    /// Vector blocks `[b0, b1)` (outputs `4*b0 .. 4*b1`).
    b0: usize,
    b1: usize,
    /// First outputs of blocks outside `[b0, b1)` whose taps partly read padding: one vector
    /// block each, with clamped loads whose out-of-range lanes are shuffled in and masked to
    /// zero (full blocks, plus the row's last four outputs when the width has a tail).
    edge: Vec<usize>,
    /// The other outputs (scalar).
    scalar: Vec<usize>,
    /// Output rows whose kernel rows are all inside the input: `[y0, y1)`.
    y0: usize,
    y1: usize,
}

impl RowPlan {
    fn new(g: &ConvGeom, has_res: bool) -> Option<RowPlan> {
        let ix = |x: usize, kj: usize| (x * g.sw + kj * g.dw) as i64 - g.pl as i64;
        let vec_ok = |xb: usize| {
            (g.sw == 1 || g.sw == 2)
                && 4 * xb + 3 < g.ow
                && (0..g.kw).all(|kj| {
                    let i0 = ix(4 * xb, kj);
                    i0 >= 0 && i0 + 4 * g.sw as i64 <= g.w as i64
                })
        };
        let good: Vec<usize> = (0..g.ow.div_ceil(4)).filter(|&xb| vec_ok(xb)).collect();
        let (b0, b1) = match (good.first(), good.last()) {
            (Some(&f), Some(&l)) if l + 1 - f == good.len() => (f, l + 1),
            _ => (0, 0),
        };
        let edge_ok = (g.sw == 1 || g.sw == 2) && g.w >= 4 * g.sw;
        let mut edge: Vec<usize> = (0..g.ow / 4)
            .filter(|&xb| edge_ok && (xb < b0 || xb >= b1))
            .map(|xb| 4 * xb)
            .collect();
        let covered = |x: usize, edge: &[usize]| {
            (4 * b0..4 * b1).contains(&x) || edge.iter().any(|&e| (e..e + 4).contains(&x))
        };
        // A row tail (ow % 4 outputs) as one more block ending at the row's end, overlapping
        // the last full block: it recomputes (and stores again) the same values, which is
        // only correct without a residual (the output may share the residual's buffer).
        if edge_ok && !has_res && g.ow >= 4 && g.ow % 4 != 0 {
            edge.push(g.ow - 4);
        }
        let scalar: Vec<usize> = (0..g.ow).filter(|&x| !covered(x, &edge)).collect();
        if (scalar.len() + edge.len()) * g.kh * g.kw > MAX_SCALAR_TAPS {
            return None;
        }
        let row_ok = |y: usize| {
            (0..g.kh).all(|ki| {
                let iy = (y * g.sh + ki * g.dh) as i64 - g.pt as i64;
                iy >= 0 && iy < g.h as i64
            })
        };
        let rows: Vec<usize> = (0..g.oh).filter(|&y| row_ok(y)).collect();
        let (y0, y1) = match (rows.first(), rows.last()) {
            (Some(&f), Some(&l)) if l + 1 - f == rows.len() => (f, l + 1),
            _ => (0, 0),
        };
        let limit = (i32::MAX / 16) as usize;
        if g.w
            .saturating_mul(g.h)
            .saturating_mul(g.dw + g.sw + g.dh + g.sh)
            > limit
            || g.ow.saturating_mul(16) > limit
        {
            return None;
        }
        Some(RowPlan {
            b0,
            b1,
            edge,
            scalar,
            y0,
            y1,
        })
    }
}

/// Values of one item the row code reads.
struct Item {
    /// Per kernel row: the input row's address (meaningful only when valid) and whether it is
    /// inside the input (`None`: known valid).
    rows: Vec<(Value, Option<Value>)>,
    /// Per tap: the weight, scalar and splat.
    w: Vec<(Value, Value)>,
    /// The bias (scalar, splat), or zero.
    bias: (Value, Value),
    out: Value,
    res: Value,
    /// Every input-row load of this path is in bounds (known-valid rows): loads may be
    /// marked readonly and movable, so Cranelift places each at its use instead of issuing
    /// all of a block's loads first (which spilled most of them).
    movable: bool,
}

impl Item {
    /// Flags for a load from the input rows.
    fn xflags(&self) -> MemFlagsData {
        if self.movable {
            vflags().with_readonly().with_can_move()
        } else {
            vflags()
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn emit(
    b: &mut FunctionBuilder,
    p: crate::codegen::kernel::KernelParams,
    g: &ConvGeom,
    row: &RowPlan,
    has_bias: bool,
    has_res: bool,
    act: Epilogue,
    fma: bool,
) -> Result<(), String> {
    let ld = |b: &mut FunctionBuilder, i: i32| b.ins().load(types::I64, flags(), p.bufs, i * 8);
    let x0 = ld(b, 0);
    let w0 = ld(b, 1);
    let o0 = ld(b, 2);
    let bias0 = ld(b, 3);
    let r0 = ld(b, 4);
    let taps = g.kh * g.kw;
    let ctx = Ctx {
        g,
        has_res,
        act,
        fma,
    };
    for_range(b, p.begin, p.end, 1, false, |b, item| {
        let ohv = b.ins().iconst(types::I64, g.oh as i64);
        let bc = b.ins().udiv(item, ohv);
        let t = b.ins().imul(bc, ohv);
        let y = b.ins().isub(item, t);
        let cv = b.ins().iconst(types::I64, g.co as i64);
        let c = b.ins().urem(bc, cv);
        let po = b.ins().imul_imm_s(bc, (g.h * g.w * 4) as i64);
        let plane = b.ins().iadd(x0, po);
        let ro = b.ins().imul_imm_s(item, (g.ow * 4) as i64);
        let out = b.ins().iadd(o0, ro);
        let res = b.ins().iadd(r0, ro);
        let wo = b.ins().imul_imm_s(c, (taps * 4) as i64);
        let wp = b.ins().iadd(w0, wo);
        let w: Vec<(Value, Value)> = (0..taps)
            .map(|t| {
                let s = b.ins().load(types::F32, flags(), wp, (t * 4) as i32);
                let v = b.ins().splat(types::F32X4, s);
                // The scalar border code reads lane 0 of the splat: one live value per tap.
                (b.ins().extractlane(v, 0), v)
            })
            .collect();
        let bias = if has_bias {
            let bo = b.ins().ishl_imm_s(c, 2);
            let bp = b.ins().iadd(bias0, bo);
            b.ins().load(types::F32, flags(), bp, 0)
        } else {
            b.ins().f32const(0.0)
        };
        let bias = (bias, b.ins().splat(types::F32X4, bias));
        let iy0 = b.ins().imul_imm_s(y, g.sh as i64);
        let mut rows = Vec::new();
        let mut checks = Vec::new();
        for ki in 0..g.kh {
            let iy = b.ins().iadd_imm_s(iy0, (ki * g.dh) as i64 - g.pt as i64);
            let off = b.ins().imul_imm_s(iy, (g.w * 4) as i64);
            rows.push(b.ins().iadd(plane, off));
            checks.push(b.ins().icmp_imm_s(IntCC::UnsignedLessThan, iy, g.h as i64));
        }
        let interior = b.ins().iadd_imm_s(y, -(row.y0 as i64));
        let interior =
            b.ins()
                .icmp_imm_s(IntCC::UnsignedLessThan, interior, (row.y1 - row.y0) as i64);
        let fast = b.create_block();
        let border = b.create_block();
        let done = b.create_block();
        b.ins().brif(interior, fast, &[], border, &[]);
        for (block, checked) in [(fast, false), (border, true)] {
            b.switch_to_block(block);
            let it = Item {
                rows: rows
                    .iter()
                    .zip(&checks)
                    .map(|(&r, &v)| (r, checked.then_some(v)))
                    .collect(),
                w: w.clone(),
                bias,
                out,
                res,
                movable: !checked,
            };
            ctx.row(b, row, &it)?;
            b.ins().jump(done, &[]);
        }
        b.switch_to_block(done);
        Ok(())
    })?;
    b.ins().return_(&[]);
    Ok(())
}

struct Ctx<'a> {
    g: &'a ConvGeom,
    has_res: bool,
    act: Epilogue,
    fma: bool,
}

impl Ctx<'_> {
    fn mul_add(&self, b: &mut FunctionBuilder, x: Value, y: Value, acc: Value) -> Value {
        if self.fma {
            // `y` (the data, single use) first: it is the one overwritten (vfmadd213), not
            // the weight, which then needs no copy.
            b.ins().fma(y, x, acc)
        } else {
            let m = b.ins().fmul(x, y);
            b.ins().fadd(acc, m)
        }
    }

    /// Accumulates into `accs` the taps of every kernel row (skipping invalid ones),
    /// `tap(b, ki, kj, row_ptr, acc) -> acc` per tap.
    fn taps(&self, b: &mut FunctionBuilder, it: &Item, accs: &[Variable], tap: Tap) {
        for (ki, &(rp, valid)) in it.rows.iter().enumerate() {
            let skip = valid.map(|v| {
                let on = b.create_block();
                let skip = b.create_block();
                b.ins().brif(v, on, &[], skip, &[]);
                b.switch_to_block(on);
                skip
            });
            for kj in 0..self.g.kw {
                for (u, &acc) in accs.iter().enumerate() {
                    let a = b.use_var(acc);
                    if let Some(next) = tap(b, ki, kj, rp, a, u) {
                        b.def_var(acc, next);
                    }
                }
            }
            if let Some(skip) = skip {
                b.ins().jump(skip, &[]);
                b.switch_to_block(skip);
            }
        }
    }

    fn activate(&self, b: &mut FunctionBuilder, x: Value, vector: bool) -> Value {
        let bounds = match self.act {
            Epilogue::None => return x,
            Epilogue::Relu => (0.0f32, None),
            Epilogue::Clip { lo, hi } => (lo, Some(hi)),
        };
        // NaN propagating: replace x only when it compares below lo / above hi.
        let clamp = |b: &mut FunctionBuilder, x: Value, bound: f32, cc: FloatCC| {
            let s = b.ins().f32const(bound);
            if vector {
                let v = b.ins().splat(types::F32X4, s);
                let m = b.ins().fcmp(cc, x, v);
                let m = b.ins().bitcast(types::F32X4, MemFlagsData::new(), m);
                b.ins().bitselect(m, v, x)
            } else {
                let m = b.ins().fcmp(cc, x, s);
                b.ins().select(m, s, x)
            }
        };
        let x = clamp(b, x, bounds.0, FloatCC::LessThan);
        match bounds.1 {
            Some(hi) => clamp(b, x, hi, FloatCC::GreaterThan),
            None => x,
        }
    }

    fn row(&self, b: &mut FunctionBuilder, row: &RowPlan, it: &Item) -> Result<(), String> {
        let g = self.g;
        let sw = g.sw as i64;
        // Rows of at most FULL_UNROLL vector blocks: straight-line code, one block after the
        // other. Within a loop, Cranelift recomputes the weight splats every step from spilled
        // scalars; straight-line, the splats stay in registers and each block's chain is
        // placed before its store.
        if row.b1 > row.b0 && row.b1 - row.b0 <= FULL_UNROLL {
            for xb in row.b0..row.b1 {
                let xb = b.ins().iconst(types::I64, xb as i64);
                self.vector_blocks(b, it, xb, 1, sw)?;
            }
        } else if row.b1 > row.b0 {
            // Vector blocks, UNROLL at a time, then one at a time.
            let lo = b.ins().iconst(types::I64, row.b0 as i64);
            let hi = b.ins().iconst(types::I64, row.b1 as i64);
            let rest = b.declare_var(types::I64);
            b.def_var(rest, lo);
            for (n, fit) in [(UNROLL, true), (1, false)] {
                let start = b.use_var(rest);
                for_range(b, start, hi, n as i64, fit, |b, xb| {
                    let next = b.ins().iadd_imm_s(xb, n as i64);
                    b.def_var(rest, next);
                    self.vector_blocks(b, it, xb, n, sw)
                })?;
            }
        }
        for &x0 in &row.edge {
            self.edge_block(b, it, x0);
        }
        // Border outputs.
        for &x in &row.scalar {
            let acc = b.declare_var(types::F32);
            b.def_var(acc, it.bias.0);
            let tap = |b: &mut FunctionBuilder, ki: usize, kj: usize, rp: Value, a: Value, _| {
                let ix = (x * g.sw + kj * g.dw) as i64 - g.pl as i64;
                if ix < 0 || ix >= g.w as i64 {
                    return None;
                }
                let v = b.ins().load(types::F32, it.xflags(), rp, (ix * 4) as i32);
                Some(self.mul_add(b, it.w[ki * g.kw + kj].0, v, a))
            };
            self.taps(b, it, &[acc], &tap);
            let mut v = b.use_var(acc);
            if self.has_res {
                let r = b.ins().load(types::F32, flags(), it.res, (x * 4) as i32);
                v = b.ins().fadd(v, r);
            }
            let v = self.activate(b, v, false);
            b.ins().store(flags(), v, it.out, (x * 4) as i32);
        }
        Ok(())
    }

    /// The vector block of outputs `x0 .. x0+4` (all inside the row) whose taps may
    /// read padding: per tap, a load clamped into the input row, a lane shuffle and a mask
    /// zeroing the padding lanes.
    fn edge_block(&self, b: &mut FunctionBuilder, it: &Item, x0: usize) {
        let g = self.g;
        let sw = g.sw;
        let acc = b.declare_var(types::F32X4);
        b.def_var(acc, it.bias.1);
        let tap = |b: &mut FunctionBuilder, ki: usize, kj: usize, rp: Value, a: Value, _| {
            let s = (x0 * sw + kj * g.dw) as i64 - g.pl as i64;
            let idx: Vec<i64> = (0..4).map(|l| s + (l * sw) as i64).collect();
            let valid: Vec<bool> = idx.iter().map(|&i| i >= 0 && i < g.w as i64).collect();
            if !valid.iter().any(|&v| v) {
                return None;
            }
            let span = (4 * sw) as i64;
            let c = s.clamp(0, g.w as i64 - span);
            let v0 = b.ins().load(types::I8X16, it.xflags(), rp, (c * 4) as i32);
            let v1 = if sw == 2 {
                b.ins()
                    .load(types::I8X16, it.xflags(), rp, (c * 4 + 16) as i32)
            } else {
                v0
            };
            let bytes: Vec<u8> = (0..4)
                .flat_map(|l| {
                    let pos = if valid[l] { (idx[l] - c) as u8 } else { 0 };
                    (0..4).map(move |k| pos * 4 + k)
                })
                .collect();
            let le = MemFlagsData::new().with_endianness(Endianness::Little);
            let identity = bytes.iter().enumerate().all(|(i, &x)| i as u8 == x);
            let mut v = if identity {
                v0
            } else {
                let imm = b.func.dfg.immediates.push(ConstantData::from(bytes));
                b.ins().shuffle(v0, v1, imm)
            };
            if valid.iter().any(|&v| !v) {
                let mask: Vec<u8> = valid
                    .iter()
                    .flat_map(|&v| [if v { 0xff } else { 0 }; 4])
                    .collect();
                let k = b.func.dfg.constants.insert(ConstantData::from(mask));
                let m = b.ins().vconst(types::I8X16, k);
                v = b.ins().band(v, m);
            }
            let v = b.ins().bitcast(types::F32X4, le, v);
            Some(self.mul_add(b, it.w[ki * g.kw + kj].1, v, a))
        };
        self.taps(b, it, &[acc], &tap);
        let mut v = b.use_var(acc);
        if self.has_res {
            let r = b
                .ins()
                .load(types::F32X4, vflags(), it.res, (x0 * 4) as i32);
            v = b.ins().fadd(v, r);
        }
        let v = self.activate(b, v, true);
        b.ins().store(vflags(), v, it.out, (x0 * 4) as i32);
    }

    /// `n` vector blocks starting at block `xb`.
    fn vector_blocks(
        &self,
        b: &mut FunctionBuilder,
        it: &Item,
        xb: Value,
        n: usize,
        sw: i64,
    ) -> Result<(), String> {
        let g = self.g;
        let xo = b.ins().imul_imm_s(xb, 16 * sw);
        let accs: Vec<Variable> = (0..n)
            .map(|_| {
                let v = b.declare_var(types::F32X4);
                b.def_var(v, it.bias.1);
                v
            })
            .collect();
        let evens = (sw == 2).then(|| {
            let bytes: Vec<u8> = [0u8, 8, 16, 24].iter().flat_map(|&s| s..s + 4).collect();
            b.func.dfg.immediates.push(ConstantData::from(bytes))
        });
        let tap = |b: &mut FunctionBuilder, ki: usize, kj: usize, rp: Value, a: Value, u: usize| {
            let at = b.ins().iadd(rp, xo);
            let disp = ((u as i64 * 4 * sw + (kj * g.dw) as i64 - g.pl as i64) * 4) as i32;
            let v = match evens {
                // Not movable: a side-effecting load with one use folds into the fma.
                None => b.ins().load(types::F32X4, vflags(), at, disp),
                Some(imm) => {
                    let v0 = b.ins().load(types::I8X16, it.xflags(), at, disp);
                    let v1 = b.ins().load(types::I8X16, it.xflags(), at, disp + 16);
                    let v = b.ins().shuffle(v0, v1, imm);
                    let le = MemFlagsData::new().with_endianness(Endianness::Little);
                    b.ins().bitcast(types::F32X4, le, v)
                }
            };
            let w = it.w[ki * g.kw + kj].1;
            if evens.is_some() {
                // The movable loads and shuffle are placed at their first use: with an fma
                // (accumulator last) all taps' loads would come before the first product,
                // with mul then add, each tap's right before it (no spills).
                let m = b.ins().fmul(w, v);
                Some(b.ins().fadd(a, m))
            } else {
                Some(self.mul_add(b, w, v, a))
            }
        };
        self.taps(b, it, &accs, &tap);
        let oo = b.ins().imul_imm_s(xb, 16);
        let out = b.ins().iadd(it.out, oo);
        let res = b.ins().iadd(it.res, oo);
        for (u, &acc) in accs.iter().enumerate() {
            let mut v = b.use_var(acc);
            if self.has_res {
                let r = b.ins().load(types::F32X4, vflags(), res, (u * 16) as i32);
                v = b.ins().fadd(v, r);
            }
            let v = self.activate(b, v, true);
            b.ins().store(vflags(), v, out, (u * 16) as i32);
        }
        Ok(())
    }
}
