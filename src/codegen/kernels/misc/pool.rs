//! Pooling over f32 NCHW tensors: MaxPool and AveragePool with two spatial dims (kernel,
//! strides, pads or auto_pad, dilations, ceil_mode, count_include_pad), GlobalAveragePool and
//! GlobalMaxPool with any number of spatial dims. Other windowed pools (other ranks, an
//! Indices output, integer MaxPool) go to [`super::pool_nd`].
//!
//! Windowed pools: a work item is one output row of one (n, c) plane. The valid kernel rows of
//! every output row come from a compile-time table; output columns whose taps are all inside
//! the input run 4 at a time (stride 1: one unaligned load per tap; stride 2: two loads and an
//! even-lane shuffle), the last block overlapping its neighbour; border columns are unrolled
//! with their valid taps known at compile time. MaxPool keeps the reference's order and NaN
//! rule (the first valid tap, then strictly greater values: the `maxps` idiom).

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, Endianness, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::{AutoPad, DType, Graph, NodeId, Op};

use super::ir::{buf, c64, for_range, hreduce, index, sflags, vflags, vmax_keep};
use super::movement::rows_loop;
use super::{in_shape, input, out_shape, output_used};
use crate::codegen::kernel::{KernelCx, Launch, Lowered, Operand};

/// See [`super`].
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    let Some(x) = input(g, node, 0) else {
        return Ok(None);
    };
    if matches!(n.op, Op::MaxPool { .. } | Op::AveragePool { .. }) && !fast_2d(g, node) {
        return super::pool_nd::lower(cx, g, node);
    }
    if g.dtype(x) != DType::F32 || n.outputs.first().map(|o| o.ty.dtype) != Some(DType::F32) {
        return Ok(None);
    }
    let (Some(xs), Some(ys)) = (in_shape(g, node, 0), out_shape(g, node, 0)) else {
        return Ok(None);
    };
    if xs.len() < 2 {
        return Ok(None);
    }
    match &n.op {
        Op::GlobalAveragePool {} | Op::GlobalMaxPool {} => {
            let mut want = xs[..2].to_vec();
            want.extend(std::iter::repeat_n(1, xs.len() - 2));
            if ys != want {
                return Ok(None);
            }
            let max = matches!(n.op, Op::GlobalMaxPool {});
            global(cx, xs[0] * xs[1], xs[2..].iter().product(), max).map(Some)
        }
        Op::MaxPool {
            auto_pad,
            ceil_mode,
            dilations,
            kernel_shape,
            pads,
            storage_order: _,
            strides,
        } => {
            if (1..n.outputs.len()).any(|i| output_used(g, node, i)) {
                return Ok(None);
            }
            let Some(geo) = Geo::new(
                &xs,
                kernel_shape,
                strides,
                dilations,
                pads,
                *auto_pad,
                *ceil_mode != 0,
            ) else {
                return Ok(None);
            };
            if geo.out_shape() != ys {
                return Ok(None);
            }
            windowed(cx, &geo, Kind::Max).map(Some)
        }
        Op::AveragePool {
            auto_pad,
            ceil_mode,
            count_include_pad,
            dilations,
            kernel_shape,
            pads,
            strides,
        } => {
            let Some(geo) = Geo::new(
                &xs,
                kernel_shape,
                strides,
                dilations,
                pads,
                *auto_pad,
                *ceil_mode != 0,
            ) else {
                return Ok(None);
            };
            if geo.out_shape() != ys {
                return Ok(None);
            }
            windowed(cx, &geo, Kind::Avg(*count_include_pad != 0)).map(Some)
        }
        _ => Ok(None),
    }
}

/// Whether a MaxPool/AveragePool node is one for the 2-D kernels: f32 `[N, C, H, W]`, a 2-D
/// window, no Indices output.
fn fast_2d(g: &Graph, node: NodeId) -> bool {
    let n = g.node(node);
    let kernel = match &n.op {
        Op::MaxPool { kernel_shape, .. } | Op::AveragePool { kernel_shape, .. } => kernel_shape,
        _ => return false,
    };
    input(g, node, 0).is_some_and(|x| g.dtype(x) == DType::F32)
        && n.outputs.first().map(|o| o.ty.dtype) == Some(DType::F32)
        && in_shape(g, node, 0).is_some_and(|xs| xs.len() == 4)
        && kernel.len() == 2
        && !(1..n.outputs.len()).any(|i| output_used(g, node, i))
}

/// Max, or average (including the padding in the count when set).
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Max,
    Avg(bool),
}

/// One spatial dim of a window: input size, kernel, stride, dilation, begin/end pads, output.
#[derive(Clone, Copy, Debug)]
pub(super) struct Dim {
    pub i: usize,
    pub k: usize,
    pub s: usize,
    pub d: usize,
    pub pb: usize,
    pub pe: usize,
    pub o: usize,
}

impl Dim {
    /// The input index of tap `k` of output `o` (may be outside the input).
    pub fn at(&self, o: usize, k: usize) -> i64 {
        (o * self.s + k * self.d) as i64 - self.pb as i64
    }
    pub fn valid(&self, o: usize, k: usize) -> bool {
        (0..self.i as i64).contains(&self.at(o, k))
    }
    /// The valid taps of output `o`: a contiguous range.
    pub fn range(&self, o: usize) -> (usize, usize) {
        let v: Vec<usize> = (0..self.k).filter(|&k| self.valid(o, k)).collect();
        match (v.first(), v.last()) {
            (Some(&a), Some(&z)) => (a, z + 1),
            _ => (0, 0),
        }
    }
    /// The divisor's factor for output `o`: valid taps, or taps not in the ceil_mode overhang.
    pub fn count(&self, o: usize, include_pad: bool) -> usize {
        (0..self.k)
            .filter(|&k| {
                if include_pad {
                    self.at(o, k) < (self.i + self.pe) as i64
                } else {
                    self.valid(o, k)
                }
            })
            .count()
    }
}

/// A 2-D window over `[N, C, H, W]`.
struct Geo {
    n: usize,
    c: usize,
    h: Dim,
    w: Dim,
}

/// The reference's geometry (`eval::nn::Window`) of every spatial dim of `sp`; `None` for
/// what it would reject.
pub(super) fn window(
    sp: &[usize],
    kernel: &[i64],
    strides: &[i64],
    dilations: &[i64],
    pads: &[i64],
    auto_pad: AutoPad,
    ceil_mode: bool,
) -> Option<Vec<Dim>> {
    let r = sp.len();
    if kernel.len() != r || r == 0 {
        return None;
    }
    let list = |v: &[i64], n: usize, fill: usize| -> Option<Vec<usize>> {
        if v.is_empty() {
            return Some(vec![fill; n]);
        }
        if v.len() != n {
            return None;
        }
        v.iter().map(|&x| usize::try_from(x).ok()).collect()
    };
    let k = list(kernel, r, 0)?;
    let s = list(strides, r, 1)?;
    let d = list(dilations, r, 1)?;
    let p = list(pads, 2 * r, 0)?;
    let mut dims = Vec::new();
    for a in 0..r {
        let i = sp[a];
        if k[a] == 0 || s[a] == 0 || d[a] == 0 {
            return None;
        }
        let ek = (k[a] - 1).checked_mul(d[a])? + 1;
        let (mut pb, mut pe) = (p[a], p[a + r]);
        let o = match auto_pad {
            AutoPad::NotSet => {
                let padded = i + pb + pe;
                if padded < ek {
                    return None;
                }
                let span = padded - ek;
                let mut o = if ceil_mode {
                    span.div_ceil(s[a]) + 1
                } else {
                    span / s[a] + 1
                };
                if ceil_mode && (o - 1) * s[a] >= i + pb {
                    o -= 1;
                }
                o
            }
            AutoPad::Valid => {
                pb = 0;
                pe = 0;
                if i < ek {
                    0
                } else {
                    (i - ek) / s[a] + 1
                }
            }
            AutoPad::SameUpper | AutoPad::SameLower => {
                let o = i.div_ceil(s[a]);
                let total = ((o.max(1) - 1) * s[a] + ek).saturating_sub(i);
                let small = total / 2;
                (pb, pe) = if auto_pad == AutoPad::SameUpper {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                o
            }
        };
        dims.push(Dim {
            i,
            k: k[a],
            s: s[a],
            d: d[a],
            pb,
            pe,
            o,
        });
    }
    Some(dims)
}

impl Geo {
    /// The 2-D geometry; `None` for what the reference would reject or what this kernel does
    /// not handle (other ranks).
    fn new(
        xs: &[usize],
        kernel: &[i64],
        strides: &[i64],
        dilations: &[i64],
        pads: &[i64],
        auto_pad: AutoPad,
        ceil_mode: bool,
    ) -> Option<Geo> {
        if xs.len() != 4 || kernel.len() != 2 {
            return None;
        }
        let dims = window(
            &xs[2..],
            kernel,
            strides,
            dilations,
            pads,
            auto_pad,
            ceil_mode,
        )?;
        Some(Geo {
            n: xs[0],
            c: xs[1],
            h: dims[0],
            w: dims[1],
        })
    }

    fn out_shape(&self) -> Vec<usize> {
        vec![self.n, self.c, self.h.o, self.w.o]
    }
}

/// `-inf` as f32 bits.
const NEG_INF: f32 = f32::NEG_INFINITY;

/// The windowed pools (see the module docs).
fn windowed(cx: &mut KernelCx, geo: &Geo, kind: Kind) -> Result<Lowered, String> {
    let (h, w) = (geo.h, geo.w);
    let planes = geo.n * geo.c;
    let items = planes * h.o;
    if items == 0 || w.o == 0 {
        return Ok(Lowered::default());
    }
    // Per output row: the valid kernel rows [lo, hi).
    let mut rows = Vec::with_capacity(h.o * 2);
    for o in 0..h.o {
        let (lo, hi) = h.range(o);
        rows.extend([lo as i64, hi as i64]);
    }
    let rows_id = cx.add_const(
        "pool_rows",
        rows.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )?;
    let mut operands = vec![
        Operand::Input(0),
        Operand::Output(0),
        Operand::Const(rows_id),
    ];
    if let Kind::Avg(incl) = kind {
        let ch: Vec<f32> = (0..h.o).map(|o| h.count(o, incl) as f32).collect();
        let mut cw: Vec<f32> = (0..w.o).map(|o| w.count(o, incl) as f32).collect();
        cw.resize(w.o + 4, 1.0);
        operands.push(Operand::Const(cx.add_const_f32("pool_ch", &ch)?));
        operands.push(Operand::Const(cx.add_const_f32("pool_cw", &cw)?));
    }
    // Columns: interior [a, z) has every tap inside the input.
    let inside = |o: usize| w.valid(o, 0) && w.valid(o, w.k - 1);
    let a = (0..w.o).find(|&o| inside(o)).unwrap_or(w.o);
    let z = (a..w.o).find(|&o| !inside(o)).unwrap_or(w.o);
    // Vector blocks need stride 1 or 2; stride 2 reads one element past its last lane.
    let vz = match w.s {
        1 => z,
        2 => (a..z)
            .rev()
            .find(|&o| w.at(o, w.k - 1) + 1 < w.i as i64)
            .map_or(a, |o| o + 1),
        _ => a,
    };
    let vec_ok = vz >= a + 4;
    let (va, vz) = if vec_ok { (a, vz) } else { (a, a) };
    let scalar_cols: Vec<usize> = (0..w.o).filter(|&o| !(va..vz).contains(&o)).collect();
    let (hi_, wi) = (h.i, w.i);
    let geo_h = h;
    let geo_w = w;
    let func = cx.define_kernel("pool", |b, p| {
        let x = buf(b, p, 0);
        let y = buf(b, p, 1);
        let rt = buf(b, p, 2);
        let (ch, cw) = if matches!(kind, Kind::Avg(_)) {
            (Some(buf(b, p, 3)), Some(buf(b, p, 4)))
        } else {
            (None, None)
        };
        let pos = unflatten2(b, p.begin, geo_h.o);
        let ohv = b.declare_var(types::I64);
        b.def_var(ohv, pos);
        let plane_in = (hi_ * wi * 4) as i64;
        let plane_out = (geo_h.o * geo_w.o * 4) as i64;
        rows_loop(
            b,
            p.begin,
            p.end,
            &[planes, geo_h.o],
            &[plane_in, 0],
            &[plane_out, (geo_w.o * 4) as i64],
            |b, so, dof| {
                let oh = b.use_var(ohv);
                let xp = b.ins().iadd(x, so);
                let yp = b.ins().iadd(y, dof);
                let ra = index(b, rt, oh, 16);
                let klo = b.ins().load(types::I64, sflags(), ra, 0);
                let khi = b.ins().load(types::I64, sflags(), ra, 8);
                // Input row of kernel row 0: oh * s - pb (may be negative; only valid rows
                // are read).
                let ih0 = b.ins().imul_imm_s(oh, geo_h.s as i64);
                let ih0 = b.ins().iadd_imm_s(ih0, -(geo_h.pb as i64));
                let row0 = index(b, xp, ih0, (wi * 4) as i64);
                let rstep = (geo_h.d * wi * 4) as i64;
                let rdiv = ch.map(|ch| {
                    let a = index(b, ch, oh, 4);
                    b.ins().load(types::F32, sflags(), a, 0)
                });
                let ctx = RowCx {
                    kind,
                    w: geo_w,
                    row0,
                    rstep,
                    klo,
                    khi,
                    yp,
                    rdiv,
                    cw,
                };
                // Vector blocks over [va, vz): a loop, then one overlapping last block.
                if vz > va {
                    let nblk = (vz - va) / 4;
                    let lo = c64(b, 0);
                    let hi = c64(b, nblk as i64);
                    for_range(b, lo, hi, |b, i| {
                        let ow0 = b.ins().imul_imm_s(i, 4);
                        let ow0 = b.ins().iadd_imm_s(ow0, va as i64);
                        ctx.vector_block(b, ow0);
                    });
                    if (vz - va) % 4 != 0 {
                        let ow0 = c64(b, (vz - 4) as i64);
                        ctx.vector_block(b, ow0);
                    }
                }
                for &o in &scalar_cols {
                    ctx.scalar_col(b, o);
                }
                // Track oh = item % OH alongside the odometer.
                let oh1 = b.ins().iadd_imm_s(oh, 1);
                let wrap = b
                    .ins()
                    .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, oh1, geo_h.o as i64);
                let zero = c64(b, 0);
                let oh1 = b.ins().select(wrap, zero, oh1);
                b.def_var(ohv, oh1);
            },
        );
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Lowered {
        launches: vec![Launch {
            func,
            operands,
            items: items as u64,
            grain: (4096 / (w.o * h.k * w.k).max(1)).max(1) as u64,
            name: match kind {
                Kind::Max => "max_pool".into(),
                Kind::Avg(_) => "average_pool".into(),
            },
        }],
        scratch_bytes: 0,
    })
}

/// `item % n` for the first item of a range.
fn unflatten2(b: &mut FunctionBuilder, item: Value, n: usize) -> Value {
    let d = c64(b, n.max(1) as i64);
    b.ins().urem(item, d)
}

/// What the per-row emitters need.
struct RowCx {
    kind: Kind,
    w: Dim,
    /// Address of input row `oh * s - pb` of the plane (kernel row 0).
    row0: Value,
    /// Bytes between kernel rows.
    rstep: i64,
    klo: Value,
    khi: Value,
    /// Output row address.
    yp: Value,
    /// The row's divisor factor (average).
    rdiv: Option<Value>,
    /// The column divisor factors table (average).
    cw: Option<Value>,
}

impl RowCx {
    /// The accumulation over the valid kernel rows: `tap(b, row_addr, first)` returns the
    /// combined value of one kernel row (`acc` is the running value or `None` for the first).
    fn over_rows(
        &self,
        b: &mut FunctionBuilder,
        ty: types::Type,
        mut row_taps: impl FnMut(&mut FunctionBuilder, Value, Option<Value>) -> Value,
        store: impl FnOnce(&mut FunctionBuilder, Value),
    ) {
        let acc = b.declare_var(ty);
        let done = b.create_block();
        match self.kind {
            Kind::Max => {
                // The first valid row seeds the accumulator; an empty range gives -inf.
                let some = b.ins().icmp(IntCC::SignedLessThan, self.klo, self.khi);
                let yes = b.create_block();
                let none = b.create_block();
                b.ins().brif(some, yes, &[], none, &[]);
                b.switch_to_block(none);
                let ninf = b.ins().f32const(NEG_INF);
                let ninf = if ty == types::F32X4 {
                    b.ins().splat(types::F32X4, ninf)
                } else {
                    ninf
                };
                b.def_var(acc, ninf);
                b.ins().jump(done, &[]);
                b.switch_to_block(yes);
                let r = index(b, self.row0, self.klo, self.rstep);
                let first = row_taps(b, r, None);
                b.def_var(acc, first);
                let lo = b.ins().iadd_imm_s(self.klo, 1);
                for_range(b, lo, self.khi, |b, k| {
                    let r = index(b, self.row0, k, self.rstep);
                    let a = b.use_var(acc);
                    let v = row_taps(b, r, Some(a));
                    b.def_var(acc, v);
                });
                b.ins().jump(done, &[]);
            }
            Kind::Avg(_) => {
                let z = b.ins().f32const(0.0);
                let z = if ty == types::F32X4 {
                    b.ins().splat(types::F32X4, z)
                } else {
                    z
                };
                b.def_var(acc, z);
                for_range(b, self.klo, self.khi, |b, k| {
                    let r = index(b, self.row0, k, self.rstep);
                    let a = b.use_var(acc);
                    let v = row_taps(b, r, Some(a));
                    b.def_var(acc, v);
                });
                b.ins().jump(done, &[]);
            }
        }
        b.switch_to_block(done);
        let v = b.use_var(acc);
        store(b, v);
    }

    /// Four output columns `ow0..ow0+4`, all taps inside the input.
    fn vector_block(&self, b: &mut FunctionBuilder, ow0: Value) {
        let w = self.w;
        let kind = self.kind;
        // Input column of tap 0: ow0 * s - pb.
        let c0 = b.ins().imul_imm_s(ow0, w.s as i64);
        let c0 = b.ins().iadd_imm_s(c0, -(w.pb as i64));
        let off0 = b.ins().imul_imm_s(c0, 4);
        let load = |b: &mut FunctionBuilder, r: Value, kw: usize| -> Value {
            let a = b.ins().iadd(r, off0);
            let o = (kw * w.d * 4) as i32;
            if w.s == 1 {
                b.ins().load(types::F32X4, vflags(), a, o)
            } else {
                let lo = b.ins().load(types::F32X4, vflags(), a, o);
                let hi = b.ins().load(types::F32X4, vflags(), a, o + 16);
                even_lanes(b, lo, hi)
            }
        };
        self.over_rows(
            b,
            types::F32X4,
            |b, r, acc| {
                let mut acc = acc;
                for kw in 0..w.k {
                    let v = load(b, r, kw);
                    acc = Some(match (acc, kind) {
                        (None, _) => v,
                        (Some(a), Kind::Max) => vmax_keep(b, v, a),
                        (Some(a), Kind::Avg(_)) => b.ins().fadd(a, v),
                    });
                }
                acc.expect("kernels have at least one tap")
            },
            |b, v| {
                let v = match (self.rdiv, self.cw) {
                    (Some(rd), Some(cw)) => {
                        let a = index(b, cw, ow0, 4);
                        let cwv = b.ins().load(types::F32X4, vflags(), a, 0);
                        let rd = b.ins().splat(types::F32X4, rd);
                        let div = b.ins().fmul(rd, cwv);
                        b.ins().fdiv(v, div)
                    }
                    _ => v,
                };
                let a = index(b, self.yp, ow0, 4);
                b.ins().store(vflags(), v, a, 0);
            },
        );
    }

    /// One output column `o` (compile time) with its valid taps.
    fn scalar_col(&self, b: &mut FunctionBuilder, o: usize) {
        let w = self.w;
        let kind = self.kind;
        let taps: Vec<(usize, i64)> = (0..w.k)
            .filter(|&k| w.valid(o, k))
            .map(|k| (k, w.at(o, k)))
            .collect();
        let store_at = (o * 4) as i32;
        if taps.is_empty() {
            let v = match kind {
                Kind::Max => b.ins().f32const(NEG_INF),
                Kind::Avg(incl) => {
                    // 0 / count: 0, or NaN for an empty count, like the reference.
                    let z = b.ins().f32const(0.0);
                    let rd = self.rdiv.expect("average has divisors");
                    let cwv = b.ins().f32const(w.count(o, incl) as f32);
                    let d = b.ins().fmul(rd, cwv);
                    b.ins().fdiv(z, d)
                }
            };
            b.ins().store(sflags(), v, self.yp, store_at);
            return;
        }
        let count_w = w.count(o, matches!(kind, Kind::Avg(true))) as f32;
        self.over_rows(
            b,
            types::F32,
            |b, r, acc| {
                let mut acc = acc;
                for &(_, col) in &taps {
                    let v = b.ins().load(types::F32, sflags(), r, (col * 4) as i32);
                    acc = Some(match (acc, kind) {
                        (None, _) => v,
                        (Some(a), Kind::Max) => {
                            let c = b.ins().fcmp(FloatCC::LessThan, a, v);
                            b.ins().select(c, v, a)
                        }
                        (Some(a), Kind::Avg(_)) => b.ins().fadd(a, v),
                    });
                }
                acc.expect("taps is not empty")
            },
            |b, v| {
                let v = match self.rdiv {
                    Some(rd) => {
                        let cwv = b.ins().f32const(count_w);
                        let d = b.ins().fmul(rd, cwv);
                        b.ins().fdiv(v, d)
                    }
                    None => v,
                };
                b.ins().store(sflags(), v, self.yp, store_at);
            },
        );
    }
}

/// Lanes 0 and 2 of `lo`, then lanes 0 and 2 of `hi` (`shufps lo, hi, 0b10_00_10_00`).
fn even_lanes(b: &mut FunctionBuilder, lo: Value, hi: Value) -> Value {
    let mask: Vec<u8> = [0u8, 2, 4, 6]
        .iter()
        .flat_map(|&l| (0..4).map(move |k| l * 4 + k))
        .collect();
    let m = b.func.dfg.immediates.push(mask.as_slice().into());
    let flags = MemFlagsData::new().with_endianness(Endianness::Little);
    let lo = b.ins().bitcast(types::I8X16, flags, lo);
    let hi = b.ins().bitcast(types::I8X16, flags, hi);
    let s = b.ins().shuffle(lo, hi, m);
    b.ins().bitcast(types::F32X4, flags, s)
}

/// `acc` combined with `v` the way GlobalMaxPool and ReduceMax do: NaN is sticky and any NaN
/// wins, otherwise strictly greater values replace (scalar or f32x4).
pub(super) fn nan_max(b: &mut FunctionBuilder, acc: Value, v: Value, max: bool) -> Value {
    let cc = if max {
        FloatCC::GreaterThan
    } else {
        FloatCC::LessThan
    };
    let better = b.ins().fcmp(cc, v, acc);
    let nan = b.ins().fcmp(FloatCC::Unordered, v, v);
    let take = b.ins().bor(better, nan);
    if b.func.dfg.value_type(acc) == types::F32X4 {
        let t = b.ins().bitcast(types::F32X4, MemFlagsData::new(), take);
        b.ins().bitselect(t, v, acc)
    } else {
        b.ins().select(take, v, acc)
    }
}

/// Sum or NaN-propagating max (min when `!max` and `sum` false) of `len` contiguous f32 at
/// `p`: 4 lanes, then a horizontal combine, then the tail.
pub(super) fn reduce_run(
    b: &mut FunctionBuilder,
    p: Value,
    len: usize,
    sum: bool,
    max: bool,
) -> Value {
    let init = if sum {
        0.0
    } else if max {
        f32::NEG_INFINITY
    } else {
        f32::INFINITY
    };
    let s = b.ins().f32const(init);
    let acc = b.declare_var(types::F32);
    if len >= 8 {
        let vacc = b.declare_var(types::F32X4);
        let v0 = b.ins().splat(types::F32X4, s);
        b.def_var(vacc, v0);
        let lo = c64(b, 0);
        let hi = c64(b, (len / 4) as i64);
        for_range(b, lo, hi, |b, i| {
            let a = index(b, p, i, 16);
            let v = b.ins().load(types::F32X4, vflags(), a, 0);
            let cur = b.use_var(vacc);
            let n = if sum {
                b.ins().fadd(cur, v)
            } else {
                nan_max(b, cur, v, max)
            };
            b.def_var(vacc, n);
        });
        let v = b.use_var(vacc);
        let r = hreduce(b, v, |b, x, y| {
            if sum {
                b.ins().fadd(x, y)
            } else {
                nan_max(b, x, y, max)
            }
        });
        b.def_var(acc, r);
    } else {
        b.def_var(acc, s);
    }
    let start = if len >= 8 { len / 4 * 4 } else { 0 };
    for k in start..len {
        let v = b.ins().load(types::F32, sflags(), p, (k * 4) as i32);
        let cur = b.use_var(acc);
        let n = if sum {
            b.ins().fadd(cur, v)
        } else {
            nan_max(b, cur, v, max)
        };
        b.def_var(acc, n);
    }
    b.use_var(acc)
}

/// GlobalAveragePool / GlobalMaxPool: one item per (n, c) plane of `pin` elements.
fn global(cx: &mut KernelCx, planes: usize, pin: usize, max: bool) -> Result<Lowered, String> {
    if planes == 0 {
        return Ok(Lowered::default());
    }
    let func = cx.define_kernel("global_pool", |b, p| {
        let x = buf(b, p, 0);
        let y = buf(b, p, 1);
        for_range(b, p.begin, p.end, |b, i| {
            let xp = index(b, x, i, (pin * 4) as i64);
            let r = reduce_run(b, xp, pin, !max, true);
            let r = if max {
                r
            } else {
                let n = b.ins().f32const(pin as f32);
                b.ins().fdiv(r, n)
            };
            let yp = index(b, y, i, 4);
            b.ins().store(sflags(), r, yp, 0);
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Lowered {
        launches: vec![Launch {
            func,
            operands: vec![Operand::Input(0), Operand::Output(0)],
            items: planes as u64,
            grain: (4096 / pin.max(1)).max(1) as u64,
            name: if max {
                "global_max_pool"
            } else {
                "global_average_pool"
            }
            .into(),
        }],
        scratch_bytes: 0,
    })
}
