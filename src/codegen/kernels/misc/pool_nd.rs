//! The windowed pools the 2-D kernels of [`super::pool`] do not take: MaxPool and AveragePool
//! over any number of spatial dims (`[N, C, D1, ..., Dr]`, r >= 1), MaxPool with its Indices
//! output (flat indices into X, the spatial part column-major when `storage_order` is 1), and
//! MaxPool on u8/i8. Same geometry as the reference (`eval::nn::Window`): pads or auto_pad,
//! strides, dilations, ceil_mode, count_include_pad.
//!
//! A work item is one output row (the last spatial dim) of one `(n, c)` plane. Per spatial dim
//! and output index a compile-time table holds the valid kernel taps `[lo, hi)`, the input
//! index of tap 0 and the average's count factor, so the kernel loops only over taps inside
//! the input (it never reads out of bounds, whatever the geometry) in row-major tap order,
//! which is the reference's: MaxPool takes the first valid tap, then strictly greater values
//! (a NaN seen first stays, later NaNs are skipped), and its index is the first maximum's; an
//! empty window gives the element type's lowest value (-inf, 0, -128) and index `plane * pin`.
//! AveragePool sums in f32 (the reference in f64) and divides by the product of the per-dim
//! counts (taps inside the input, or inside the padded input when `count_include_pad`: taps
//! in the ceil_mode overhang never count).

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, Type, Value};
use cranelift_frontend::{FunctionBuilder, Variable};
use graphc_passes::ir::{DType, Graph, NodeId, Op};

use super::ir::{add_off, buf, c64, for_range, index, sflags, unflatten};
use super::pool::{window, Dim};
use super::{in_shape, input, out_shape, output_used, strides as row_strides};
use crate::codegen::kernel::{KernelCx, Launch, Lowered, Operand};

/// Max over one element type, or the f32 average (counting the padding when set).
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Max(DType),
    Avg(bool),
}

/// See the module docs.
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    let Some(x) = input(g, node, 0) else {
        return Ok(None);
    };
    let dt = g.dtype(x);
    let (Some(xs), Some(ys)) = (in_shape(g, node, 0), out_shape(g, node, 0)) else {
        return Ok(None);
    };
    if xs.len() < 3 || n.outputs[0].ty.dtype != dt {
        return Ok(None);
    }
    let (kind, dims, col_major) = match &n.op {
        Op::MaxPool {
            auto_pad,
            ceil_mode,
            dilations,
            kernel_shape,
            pads,
            storage_order,
            strides,
        } => {
            if !matches!(dt, DType::F32 | DType::U8 | DType::I8) || !(0..=1).contains(storage_order)
            {
                return Ok(None);
            }
            let dims = window(
                &xs[2..],
                kernel_shape,
                strides,
                dilations,
                pads,
                *auto_pad,
                *ceil_mode != 0,
            );
            (Kind::Max(dt), dims, *storage_order == 1)
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
            if dt != DType::F32 {
                return Ok(None);
            }
            let dims = window(
                &xs[2..],
                kernel_shape,
                strides,
                dilations,
                pads,
                *auto_pad,
                *ceil_mode != 0,
            );
            (Kind::Avg(*count_include_pad != 0), dims, false)
        }
        _ => return Ok(None),
    };
    let Some(dims) = dims else {
        return Ok(None);
    };
    let mut want = xs[..2].to_vec();
    want.extend(dims.iter().map(|d| d.o));
    if ys != want {
        return Ok(None);
    }
    // The Indices output, when something reads it.
    let indices = n.outputs.len() > 1 && output_used(g, node, 1);
    if indices
        && (!matches!(kind, Kind::Max(_))
            || n.outputs[1].ty.dtype != DType::I64
            || out_shape(g, node, 1).as_ref() != Some(&ys))
    {
        return Ok(None);
    }
    if (2..n.outputs.len()).any(|i| output_used(g, node, i)) {
        return Ok(None);
    }
    pool_nd(cx, &xs, &dims, kind, indices, col_major).map(Some)
}

/// Bytes of one row of the per-dim tables: `lo, hi, base, count` as i64.
const ENTRY: usize = 32;

fn pool_nd(
    cx: &mut KernelCx,
    xs: &[usize],
    dims: &[Dim],
    kind: Kind,
    indices: bool,
    col_major: bool,
) -> Result<Lowered, String> {
    let r = dims.len();
    let planes = xs[0] * xs[1];
    let o_last = dims[r - 1].o;
    // Items: (plane, o_0, ..., o_{r-2}).
    let mut outer = vec![planes];
    outer.extend(dims[..r - 1].iter().map(|d| d.o));
    let items: usize = outer.iter().product();
    if items == 0 || o_last == 0 {
        return Ok(Lowered::default());
    }
    let (ety, es) = match kind {
        Kind::Max(DType::U8) | Kind::Max(DType::I8) => (types::I8, 1usize),
        _ => (types::F32, 4),
    };
    let sp = &xs[2..];
    let pin: usize = sp.iter().product();
    let row_el = row_strides(sp);
    let mut col_el = vec![1usize; r];
    for d in 1..r {
        col_el[d] = col_el[d - 1] * sp[d - 1];
    }
    let incl = matches!(kind, Kind::Avg(true));
    let mut table: Vec<i64> = Vec::new();
    let mut offs = Vec::with_capacity(r);
    for dim in dims {
        offs.push(table.len() * 8);
        for o in 0..dim.o {
            let (lo, hi) = dim.range(o);
            table.extend([
                lo as i64,
                hi as i64,
                dim.at(o, 0),
                dim.count(o, incl) as i64,
            ]);
        }
    }
    let tab = cx.add_const(
        "pool_nd_taps",
        table.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )?;
    let mut operands = vec![Operand::Input(0), Operand::Output(0)];
    if indices {
        operands.push(Operand::Output(1));
    }
    operands.push(Operand::Const(tab));
    let tab_slot = operands.len() - 1;
    let nest = Nest {
        kind,
        ety,
        dil: dims.iter().map(|d| d.d as i64).collect(),
        row_bytes: row_el.iter().map(|&s| (s * es) as i64).collect(),
        idx_el: indices.then(|| {
            let el = if col_major { &col_el } else { &row_el };
            el.iter().map(|&s| s as i64).collect()
        }),
    };
    let func = cx.define_kernel("pool_nd", |b, p| {
        let x = buf(b, p, 0);
        let y = buf(b, p, 1);
        let ind = indices.then(|| buf(b, p, 2));
        let tp = buf(b, p, tab_slot);
        for_range(b, p.begin, p.end, |b, item| {
            let idx = unflatten(b, item, &outer);
            let xp = index(b, x, idx[0], (pin * es) as i64);
            let plane_base = b.ins().imul_imm_s(idx[0], pin as i64);
            let mut ranges: Vec<[Value; 4]> = (0..r - 1)
                .map(|d| entry(b, tp, offs[d], idx[d + 1]))
                .collect();
            let yrow = index(b, y, item, (o_last * es) as i64);
            let irow = ind.map(|ip| index(b, ip, item, (o_last * 8) as i64));
            let lo = c64(b, 0);
            let hi = c64(b, o_last as i64);
            for_range(b, lo, hi, |b, ol| {
                ranges.push(entry(b, tp, offs[r - 1], ol));
                let vars = nest.start(b);
                let zero = c64(b, 0);
                nest.taps(b, &ranges, &vars, 0, xp, zero);
                let last = ranges.pop().expect("pushed above");
                let v = b.use_var(vars.acc);
                match kind {
                    Kind::Max(_) => {
                        let ya = index(b, yrow, ol, es as i64);
                        b.ins().store(sflags(), v, ya, 0);
                        if let Some(irow) = irow {
                            let best = b.use_var(vars.best);
                            let flat = b.ins().iadd(plane_base, best);
                            let ia = index(b, irow, ol, 8);
                            b.ins().store(sflags(), flat, ia, 0);
                        }
                    }
                    Kind::Avg(_) => {
                        let count = ranges
                            .iter()
                            .chain(std::iter::once(&last))
                            .map(|e| e[3])
                            .reduce(|a, c| b.ins().imul(a, c))
                            .expect("at least one spatial dim");
                        let cf = b.ins().fcvt_from_sint(types::F32, count);
                        let q = b.ins().fdiv(v, cf);
                        let ya = index(b, yrow, ol, 4);
                        b.ins().store(sflags(), q, ya, 0);
                    }
                }
            });
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    let taps: usize = dims.iter().map(|d| d.k).product();
    Ok(Lowered {
        launches: vec![Launch {
            func,
            operands,
            items: items as u64,
            grain: (4096 / (o_last * taps).max(1)).max(1) as u64,
            name: match kind {
                Kind::Max(_) => "max_pool_nd".into(),
                Kind::Avg(_) => "average_pool_nd".into(),
            },
        }],
        scratch_bytes: 0,
    })
}

/// The table row `[lo, hi, base, count]` of output index `o` of the dim whose table starts
/// `off` bytes into `tp`.
fn entry(b: &mut FunctionBuilder, tp: Value, off: usize, o: Value) -> [Value; 4] {
    let t = add_off(b, tp, off as i64);
    let a = index(b, t, o, ENTRY as i64);
    [0, 8, 16, 24].map(|k| b.ins().load(types::I64, sflags(), a, k))
}

/// The running value of one output element: accumulator, whether a tap was seen (max), the
/// spatial index of the best tap (Indices).
struct Vars {
    acc: Variable,
    seen: Variable,
    best: Variable,
}

/// The tap loop nest (one loop per spatial dim) of one output element.
struct Nest {
    kind: Kind,
    ety: Type,
    dil: Vec<i64>,
    /// Bytes between input elements along each spatial dim.
    row_bytes: Vec<i64>,
    /// Index-space strides along each spatial dim (row- or column-major), with Indices.
    idx_el: Option<Vec<i64>>,
}

impl Nest {
    fn start(&self, b: &mut FunctionBuilder) -> Vars {
        let acc = b.declare_var(self.ety);
        let seen = b.declare_var(types::I8);
        let best = b.declare_var(types::I64);
        let init = match self.kind {
            Kind::Max(DType::U8) => b.ins().iconst(types::I8, 0),
            Kind::Max(DType::I8) => b.ins().iconst(types::I8, 0x80),
            Kind::Max(_) => b.ins().f32const(f32::NEG_INFINITY),
            Kind::Avg(_) => b.ins().f32const(0.0),
        };
        b.def_var(acc, init);
        let no = b.ins().iconst(types::I8, 0);
        b.def_var(seen, no);
        let zero = c64(b, 0);
        b.def_var(best, zero);
        Vars { acc, seen, best }
    }

    /// Loops over the valid taps of dim `d` and the dims after it; `addr` is the input address
    /// and `sp` the spatial index of the dims before.
    fn taps(
        &self,
        b: &mut FunctionBuilder,
        ranges: &[[Value; 4]],
        vars: &Vars,
        d: usize,
        addr: Value,
        sp: Value,
    ) {
        if d == ranges.len() {
            self.tap(b, vars, addr, sp);
            return;
        }
        let [lo, hi, base, _] = ranges[d];
        for_range(b, lo, hi, |b, k| {
            // Input index along d: base + k * dilation, inside [0, size) for k in [lo, hi).
            let kd = b.ins().imul_imm_s(k, self.dil[d]);
            let i = b.ins().iadd(base, kd);
            let a = index(b, addr, i, self.row_bytes[d]);
            let s = match &self.idx_el {
                Some(el) => {
                    let t = b.ins().imul_imm_s(i, el[d]);
                    b.ins().iadd(sp, t)
                }
                None => sp,
            };
            self.taps(b, ranges, vars, d + 1, a, s);
        });
    }

    fn tap(&self, b: &mut FunctionBuilder, vars: &Vars, addr: Value, sp: Value) {
        let v = b.ins().load(self.ety, sflags(), addr, 0);
        let acc = b.use_var(vars.acc);
        match self.kind {
            Kind::Avg(_) => {
                let s = b.ins().fadd(acc, v);
                b.def_var(vars.acc, s);
            }
            Kind::Max(dt) => {
                let gt = match dt {
                    DType::U8 => b.ins().icmp(IntCC::UnsignedGreaterThan, v, acc),
                    DType::I8 => b.ins().icmp(IntCC::SignedGreaterThan, v, acc),
                    _ => b.ins().fcmp(FloatCC::GreaterThan, v, acc),
                };
                let seen = b.use_var(vars.seen);
                let fresh = b.ins().icmp_imm_s(IntCC::Equal, seen, 0);
                let take = b.ins().bor(gt, fresh);
                let n = b.ins().select(take, v, acc);
                b.def_var(vars.acc, n);
                let yes = b.ins().iconst(types::I8, 1);
                b.def_var(vars.seen, yes);
                if self.idx_el.is_some() {
                    let best = b.use_var(vars.best);
                    let nb = b.ins().select(take, sp, best);
                    b.def_var(vars.best, nb);
                }
            }
        }
    }
}
