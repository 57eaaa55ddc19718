//! LSTM, GRU and RNN unrolled over their (static) sequence into MatMul, Slice, elementwise and
//! Concat ops, each of which has a kernel.
//!
//! Per direction: the input projection of every time step is one GEMM
//! (`X[seq·batch, input] · Wᵀ + Wb`); then each step reads its rows of it, adds
//! `H · Rᵀ + Rb`, and applies the cell (gates as column slices, in ONNX order: LSTM i, o, f,
//! c; GRU z, r, h). A reverse direction walks the steps backwards. The steps' hidden states are
//! concatenated into Y, the last ones are Y_h (and Y_c). As the reference evaluator computes
//! it (`passes/src/eval/misc/rnn.rs`) for f32 and activations Sigmoid, Tanh and Relu. With
//! `sequence_lens` (forward only), each step is masked per batch row: rows past their length
//! keep their state and output zeros. Other forms are left whole.
//!
//! The unrolled graph has about ten nodes per step and direction, so it suits the short
//! sequences of the models it was written for; a loop kernel would suit long ones better.

use graphc_passes::eval::{recurrent_config, RecurrentAct, RecurrentCell};
use graphc_passes::ir::{DType, Graph, NodeId, Op, Tensor, ValueRef};

use super::{become_last_step, known, Builder};

struct Plan {
    cell: RecurrentCell,
    x: ValueRef,
    w: ValueRef,
    r: ValueRef,
    b: Option<ValueRef>,
    h0: Option<ValueRef>,
    c0: Option<ValueRef>,
    p: Option<ValueRef>,
    /// sequence_lens when steps must be masked (forward only).
    lens: Option<ValueRef>,
    seq: usize,
    batch: usize,
    input: usize,
    hidden: usize,
    dirs: usize,
    reverse_only: bool,
    layout1: bool,
    clip: Option<f32>,
    /// Per direction, the activation ops.
    acts: Vec<Vec<Op>>,
}

/// The op of an activation that has a kernel (those without parameters the cells use).
fn act_op(act: RecurrentAct) -> Option<Op> {
    match act {
        RecurrentAct::Sigmoid => Some(Op::Sigmoid {}),
        RecurrentAct::Tanh => Some(Op::Tanh {}),
        RecurrentAct::Relu => Some(Op::Relu {}),
        _ => None,
    }
}

fn plan(g: &Graph, id: NodeId) -> Option<Plan> {
    let node = g.node(id);
    let cfg = recurrent_config(&node.op).ok()?;
    let (cell, hidden, dirs, reverse_only) = (cfg.cell, cfg.hidden, cfg.num_dir, cfg.reverse_only);
    let acts: Vec<Vec<Op>> = cfg
        .acts
        .iter()
        .map(|dir| dir.iter().map(|&a| act_op(a)).collect::<Option<Vec<Op>>>())
        .collect::<Option<_>>()?;
    let layout = &cfg.layout;
    let clip = cfg.clip.map(|c| c as f32);
    let input = |i: usize| node.inputs.get(i).copied().flatten();
    let (x, w, r) = (input(0)?, input(1)?, input(2)?);
    let (b, lens, h0, c0, p) = (input(3), input(4), input(5), input(6), input(7));
    let is_lstm = matches!(cell, RecurrentCell::Lstm { .. });
    if !is_lstm && (c0.is_some() || p.is_some()) {
        return None;
    }
    let max_outputs = if is_lstm { 3 } else { 2 };
    if node.outputs.is_empty() || node.outputs.len() > max_outputs {
        return None;
    }
    for v in [Some(x), Some(w), Some(r), b, h0, c0, p]
        .into_iter()
        .flatten()
    {
        if g.dtype(v) != DType::F32 {
            return None;
        }
    }
    let xs = known(g, x)?;
    let [a0, a1, in_size] = *xs.as_slice() else {
        return None;
    };
    let (seq, batch) = if *layout == 1 { (a1, a0) } else { (a0, a1) };
    if seq == 0 || batch == 0 || in_size == 0 {
        return None;
    }
    let gh = cell.gates() * hidden;
    if known(g, w)? != [dirs, gh, in_size] || known(g, r)? != [dirs, gh, hidden] {
        return None;
    }
    if b.is_some_and(|b| known(g, b).as_deref() != Some(&[dirs, 2 * gh][..])) {
        return None;
    }
    let state = if *layout == 1 {
        [batch, dirs, hidden]
    } else {
        [dirs, batch, hidden]
    };
    for s in [h0, c0].into_iter().flatten() {
        if known(g, s)? != state {
            return None;
        }
    }
    if p.is_some_and(|p| known(g, p).as_deref() != Some(&[dirs, 3 * hidden][..])) {
        return None;
    }
    // sequence_lens: ignored when it is a constant that cuts no sequence short; otherwise
    // steps are masked per batch row, which a forward walk allows (a reverse one starts each
    // row at its own last step).
    let lens = match lens {
        None => None,
        Some(l) => {
            let full = match &g.node(l.node).op {
                Op::Constant { value } => value
                    .to_i64_vec()
                    .is_ok_and(|v| v.len() == batch && v.iter().all(|&x| x == seq as i64)),
                _ => false,
            };
            if full {
                None
            } else if reverse_only || dirs == 2 {
                return None;
            } else if !matches!(g.dtype(l), DType::I32 | DType::I64) || known(g, l)? != [batch] {
                return None;
            } else {
                Some(l)
            }
        }
    };
    Some(Plan {
        cell,
        x,
        w,
        r,
        b,
        h0,
        c0,
        p,
        lens,
        seq,
        batch,
        input: in_size,
        hidden,
        dirs,
        reverse_only,
        layout1: *layout == 1,
        clip,
        acts,
    })
}

impl Builder<'_> {
    fn binary(&mut self, suffix: &str, op: Op, a: ValueRef, b: ValueRef) -> ValueRef {
        let (da, db) = (
            known(self.g, a).expect("static"),
            known(self.g, b).expect("static"),
        );
        let dims = super::broadcast(&da, &db).expect("operands broadcast");
        self.f32(suffix, op, vec![a, b], &dims)
    }

    fn unary(&mut self, suffix: &str, op: Op, x: ValueRef) -> ValueRef {
        let dims = known(self.g, x).expect("static");
        self.f32(suffix, op, vec![x], &dims)
    }
}

/// Rewrites LSTM / GRU / RNN node `id` into kernel-backed ops (see the module docs); leaves it
/// whole when its form is not covered.
pub fn decompose(g: &mut Graph, id: NodeId) {
    let Some(p) = plan(g, id) else {
        return;
    };
    let mut bld = Builder::for_node(g, id);
    let (seq, batch, h) = (p.seq, p.batch, p.hidden);
    let gh = p.cell.gates() * h;
    // X as [seq·batch, input], time-major.
    let x = if p.layout1 {
        bld.transpose("x.time", p.x, &[1, 0, 2], &[seq, batch, p.input])
    } else {
        p.x
    };
    let x2 = bld.reshape("x.rows", x, &[seq * batch, p.input]);
    let clip = p.clip.map(|c| {
        let lo = bld.constant("clip.lo", Tensor::scalar(-c));
        let hi = bld.constant("clip.hi", Tensor::scalar(c));
        (lo, hi)
    });
    let one = bld.constant("one", Tensor::scalar(1f32));

    let mut ys = Vec::new();
    let mut hs = Vec::new();
    let mut cs = Vec::new();
    for d in 0..p.dirs {
        let tag = |s: &str| format!("d{d}.{s}");
        let reverse = p.reverse_only || d == 1;
        let acts = p.acts[d].clone();
        // Wᵀ [input, gh], Rᵀ [h, gh], biases [gh].
        let wd = bld.range(&tag("w"), p.w, 0, d, d + 1);
        let wd = bld.reshape(&tag("w.2d"), wd, &[gh, p.input]);
        let wt = bld.transpose(&tag("wt"), wd, &[1, 0], &[p.input, gh]);
        let rd = bld.range(&tag("r"), p.r, 0, d, d + 1);
        let rd = bld.reshape(&tag("r.2d"), rd, &[gh, h]);
        let rt = bld.transpose(&tag("rt"), rd, &[1, 0], &[h, gh]);
        let (wb, rb) = match p.b {
            Some(b) => {
                let bd = bld.range(&tag("b"), b, 0, d, d + 1);
                let bd = bld.reshape(&tag("b.1d"), bd, &[2 * gh]);
                let wb = bld.range(&tag("wb"), bd, 0, 0, gh);
                let rb = bld.range(&tag("rb"), bd, 0, gh, 2 * gh);
                (Some(wb), Some(rb))
            }
            None => (None, None),
        };
        let peep = p.p.map(|pp| {
            let pd = bld.range(&tag("p"), pp, 0, d, d + 1);
            let pd = bld.reshape(&tag("p.1d"), pd, &[3 * h]);
            let pi = bld.range(&tag("p.i"), pd, 0, 0, h);
            let po = bld.range(&tag("p.o"), pd, 0, h, 2 * h);
            let pf = bld.range(&tag("p.f"), pd, 0, 2 * h, 3 * h);
            (pi, po, pf)
        });
        // The input projections of all steps: one GEMM.
        let mut xw = bld.f32(&tag("xw"), Op::MatMul {}, vec![x2, wt], &[seq * batch, gh]);
        if let Some(wb) = wb {
            xw = bld.binary(&tag("xw.b"), Op::Add {}, xw, wb);
        }
        // Initial states [batch, h].
        let initial = |bld: &mut Builder, v: Option<ValueRef>, what: &str| match v {
            Some(v) => {
                let axis = if p.layout1 { 1 } else { 0 };
                let s = bld.range(&format!("d{d}.{what}0"), v, axis, d, d + 1);
                bld.reshape(&format!("d{d}.{what}0.2d"), s, &[batch, h])
            }
            None => {
                let z = Tensor::from_vec(&[batch, h], vec![0f32; batch * h]).expect("size");
                bld.constant(&format!("d{d}.{what}0.zero"), z)
            }
        };
        let mut ht = initial(&mut bld, p.h0, "h");
        let mut ct = initial(&mut bld, p.c0, "c");
        // GRU without linear_before_reset: the candidate's recurrent weights apart.
        let rt_h = match p.cell {
            RecurrentCell::Gru {
                linear_before_reset: false,
            } => {
                let rt_h = bld.range(&tag("rt.h"), rt, 1, 2 * h, 3 * h);
                let rb_h = rb.map(|rb| bld.range(&tag("rb.h"), rb, 0, 2 * h, 3 * h));
                Some((rt_h, rb_h))
            }
            _ => None,
        };
        let mut steps = vec![None; seq];
        for k in 0..seq {
            let t = if reverse { seq - 1 - k } else { k };
            let s = |what: &str| format!("d{d}.t{t}.{what}");
            let xt = bld.range(&s("x"), xw, 0, t * batch, (t + 1) * batch);
            let mut hr = bld.f32(&s("hr"), Op::MatMul {}, vec![ht, rt], &[batch, gh]);
            if let Some(rb) = rb {
                hr = bld.binary(&s("hr.b"), Op::Add {}, hr, rb);
            }
            let c_prev = ct;
            let clipped = |bld: &mut Builder, what: &str, v: ValueRef| match clip {
                Some((lo, hi)) => bld.f32(&s(what), Op::Clip {}, vec![v, lo, hi], &[batch, h]),
                None => v,
            };
            let new_h = match p.cell {
                RecurrentCell::Rnn => {
                    let pre = bld.binary(&s("pre"), Op::Add {}, xt, hr);
                    let pre = clipped(&mut bld, "pre.clip", pre);
                    bld.unary(&s("h"), acts[0].clone(), pre)
                }
                RecurrentCell::Lstm { input_forget } => {
                    let pre = bld.binary(&s("pre"), Op::Add {}, xt, hr);
                    let gate = |bld: &mut Builder, what: &str, j: usize| {
                        bld.range(&s(what), pre, 1, j * h, (j + 1) * h)
                    };
                    let (gi, go, gf, gc) = (
                        gate(&mut bld, "i", 0),
                        gate(&mut bld, "o", 1),
                        gate(&mut bld, "f", 2),
                        gate(&mut bld, "c", 3),
                    );
                    let peeped = |bld: &mut Builder,
                                  what: &str,
                                  gate: ValueRef,
                                  pv: Option<ValueRef>,
                                  c: ValueRef| match pv {
                        Some(pv) => {
                            let pc = bld.binary(&s(&format!("{what}.pc")), Op::Mul {}, pv, c);
                            bld.binary(&s(&format!("{what}.peep")), Op::Add {}, gate, pc)
                        }
                        None => gate,
                    };
                    let gi = peeped(&mut bld, "i", gi, peep.map(|p| p.0), ct);
                    let gi = clipped(&mut bld, "i.clip", gi);
                    let ig = bld.unary(&s("i.act"), acts[0].clone(), gi);
                    let fg = if input_forget {
                        bld.binary(&s("f.act"), Op::Sub {}, one, ig)
                    } else {
                        let gf = peeped(&mut bld, "f", gf, peep.map(|p| p.2), ct);
                        let gf = clipped(&mut bld, "f.clip", gf);
                        bld.unary(&s("f.act"), acts[0].clone(), gf)
                    };
                    let gc = clipped(&mut bld, "c.clip", gc);
                    let cg = bld.unary(&s("c.act"), acts[1].clone(), gc);
                    let fc = bld.binary(&s("fc"), Op::Mul {}, fg, ct);
                    let icg = bld.binary(&s("ic"), Op::Mul {}, ig, cg);
                    let c_new = bld.binary(&s("c"), Op::Add {}, fc, icg);
                    let go = peeped(&mut bld, "o", go, peep.map(|p| p.1), c_new);
                    let go = clipped(&mut bld, "o.clip", go);
                    let og = bld.unary(&s("o.act"), acts[0].clone(), go);
                    let hc = bld.unary(&s("c.out"), acts[2].clone(), c_new);
                    ct = c_new;
                    bld.binary(&s("h"), Op::Mul {}, og, hc)
                }
                RecurrentCell::Gru {
                    linear_before_reset,
                } => {
                    let xg = |bld: &mut Builder, what: &str, j: usize| {
                        bld.range(&s(&format!("x.{what}")), xt, 1, j * h, (j + 1) * h)
                    };
                    let hg = |bld: &mut Builder, what: &str, j: usize| {
                        bld.range(&s(&format!("hr.{what}")), hr, 1, j * h, (j + 1) * h)
                    };
                    let (xz, xr, xh) = (
                        xg(&mut bld, "z", 0),
                        xg(&mut bld, "r", 1),
                        xg(&mut bld, "h", 2),
                    );
                    let (hz, hrr) = (hg(&mut bld, "z", 0), hg(&mut bld, "r", 1));
                    let z = bld.binary(&s("z.pre"), Op::Add {}, xz, hz);
                    let z = clipped(&mut bld, "z.clip", z);
                    let z = bld.unary(&s("z"), acts[0].clone(), z);
                    let r = bld.binary(&s("r.pre"), Op::Add {}, xr, hrr);
                    let r = clipped(&mut bld, "r.clip", r);
                    let r = bld.unary(&s("r"), acts[0].clone(), r);
                    let rec = if linear_before_reset {
                        let hh = hg(&mut bld, "h", 2);
                        bld.binary(&s("h.rec"), Op::Mul {}, r, hh)
                    } else {
                        let (rt_h, rb_h) = rt_h.expect("set for this cell");
                        let rh = bld.binary(&s("rh"), Op::Mul {}, r, ht);
                        let m = bld.f32(&s("rh.r"), Op::MatMul {}, vec![rh, rt_h], &[batch, h]);
                        match rb_h {
                            Some(rb_h) => bld.binary(&s("h.rec"), Op::Add {}, m, rb_h),
                            None => m,
                        }
                    };
                    let cand = bld.binary(&s("h.pre"), Op::Add {}, xh, rec);
                    let cand = clipped(&mut bld, "h.clip", cand);
                    let cand = bld.unary(&s("h.cand"), acts[1].clone(), cand);
                    // (1 - z) · cand + z · h = cand + z · (h - cand)
                    let diff = bld.binary(&s("h.diff"), Op::Sub {}, ht, cand);
                    let zd = bld.binary(&s("h.zd"), Op::Mul {}, z, diff);
                    bld.binary(&s("h"), Op::Add {}, cand, zd)
                }
            };
            let y_t = match p.lens {
                None => {
                    ht = new_h;
                    new_h
                }
                Some(lens) => {
                    // Rows past their length keep their state and output zeros.
                    let at = Tensor::from_vec(&[], vec![t as i64])
                        .expect("size")
                        .cast(bld.g.dtype(lens));
                    let at = bld.constant(&s("t"), at);
                    let live = bld.add(
                        &s("live"),
                        Op::Less {},
                        vec![at, lens],
                        DType::Bool,
                        &[batch],
                    );
                    let zero = bld.constant(&s("zero"), Tensor::scalar(0f32));
                    let m = bld.f32(&s("mask"), Op::Where {}, vec![live, one, zero], &[batch]);
                    let m = bld.reshape(&s("mask.col"), m, &[batch, 1]);
                    let keep = |bld: &mut Builder, what: &str, new: ValueRef, old: ValueRef| {
                        let diff = bld.binary(&s(&format!("{what}.step")), Op::Sub {}, new, old);
                        let md = bld.binary(&s(&format!("{what}.masked")), Op::Mul {}, m, diff);
                        bld.binary(&s(&format!("{what}.kept")), Op::Add {}, old, md)
                    };
                    if matches!(p.cell, RecurrentCell::Lstm { .. }) {
                        ct = keep(&mut bld, "c", ct, c_prev);
                    }
                    ht = keep(&mut bld, "h", new_h, ht);
                    bld.binary(&s("y.masked"), Op::Mul {}, m, new_h)
                }
            };
            steps[t] = Some(bld.reshape(&s("y"), y_t, &[1, 1, batch, h]));
        }
        let steps: Vec<ValueRef> = steps.into_iter().map(|v| v.expect("every step")).collect();
        let y = if seq == 1 {
            steps[0]
        } else {
            bld.f32(
                &tag("y"),
                Op::Concat { axis: 0 },
                steps,
                &[seq, 1, batch, h],
            )
        };
        ys.push(y);
        hs.push(bld.reshape(&tag("y_h"), ht, &[1, batch, h]));
        cs.push(bld.reshape(&tag("y_c"), ct, &[1, batch, h]));
    }
    let dirs = p.dirs;
    let join = |bld: &mut Builder, what: &str, parts: Vec<ValueRef>, axis: i64, dims: &[usize]| {
        if parts.len() == 1 {
            parts[0]
        } else {
            bld.f32(what, Op::Concat { axis }, parts, dims)
        }
    };
    let y = join(&mut bld, "y", ys, 1, &[seq, dirs, batch, h]);
    let y_h = join(&mut bld, "y_h", hs, 0, &[dirs, batch, h]);
    let y_c = join(&mut bld, "y_c", cs, 0, &[dirs, batch, h]);
    let (y_h, y_c) = if p.layout1 {
        (
            bld.transpose("y_h.batch", y_h, &[1, 0, 2], &[batch, dirs, h]),
            bld.transpose("y_c.batch", y_c, &[1, 0, 2], &[batch, dirs, h]),
        )
    } else {
        (y_h, y_c)
    };
    // Y: the node itself becomes its last step.
    let (op, inputs) = if p.layout1 {
        (
            Op::Transpose {
                perm: Some(vec![2, 0, 1, 3]),
            },
            vec![y],
        )
    } else {
        let s = bld.shape("y.shape", &[seq, dirs, batch, h]);
        (Op::Reshape { allowzero: 0 }, vec![y, s])
    };
    become_last_step(bld.g, id, op, inputs, &[y_h, y_c]);
}
