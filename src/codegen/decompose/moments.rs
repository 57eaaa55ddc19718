//! Normalizations by batch moments: BatchNormalization in training mode (with its running
//! mean and variance outputs) and MeanVarianceNormalization, as ReduceMean and elementwise
//! ops in f64 between two Casts, as the reference evaluator computes them
//! (`passes/src/eval/nn/norm.rs`: f64 throughout, one rounding to the output type; the
//! variance is the population one).
//!
//! - BatchNormalization: `m = E[x]`, `v = E[(x - m)^2]` over every axis but 1,
//!   `y = (x - m) / sqrt(v + eps) · scale + bias`, running statistics
//!   `input · momentum + batch · (1 - momentum)`.
//! - MeanVarianceNormalization: `(x - E[x]) / (sqrt(E[x^2] - E[x]^2) + 1e-9)` over `axes`.
//!
//! Declined: element types other than f32 and f64, dynamic shapes, inference-mode
//! BatchNormalization (a kernel of its own), axes out of range.

use graphc_passes::ir::{DType, Graph, NodeId, Op, Tensor, ValueRef};

use super::{become_last_step, known, Builder};

fn float(dt: DType) -> bool {
    matches!(dt, DType::F32 | DType::F64)
}

/// `x` as f64 (a Cast unless it is one).
fn widen(bld: &mut Builder, suffix: &str, x: ValueRef) -> ValueRef {
    if bld.g.dtype(x) == DType::F64 {
        return x;
    }
    let dims = known(bld.g, x).expect("static shapes");
    let op = Op::Cast {
        to: DType::F64,
        saturate: 1,
        round_mode: "up".into(),
    };
    bld.add(suffix, op, vec![x], DType::F64, &dims)
}

/// The Cast of an f64 value to `dt`.
fn narrow(dt: DType) -> Op {
    Op::Cast {
        to: dt,
        saturate: 1,
        round_mode: "up".into(),
    }
}

/// `E[x]` over `axes`, kept as size-1 dims (f64).
fn mean(bld: &mut Builder, suffix: &str, x: ValueRef, axes: &[usize]) -> ValueRef {
    let mut dims = known(bld.g, x).expect("static shapes");
    for &a in axes {
        dims[a] = 1;
    }
    let a: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
    let a = bld.constant(
        &format!("{suffix}.axes"),
        Tensor::from_vec(&[a.len()], a).expect("size"),
    );
    let op = Op::ReduceMean {
        keepdims: 1,
        noop_with_empty_axes: 0,
    };
    bld.add(suffix, op, vec![x, a], DType::F64, &dims)
}

/// A binary f64 op whose result has the broadcast shape.
fn bin(bld: &mut Builder, suffix: &str, op: Op, a: ValueRef, b: ValueRef) -> ValueRef {
    let (da, db) = (known(bld.g, a), known(bld.g, b));
    let dims = super::broadcast(&da.expect("static"), &db.expect("static")).expect("broadcasts");
    bld.add(suffix, op, vec![a, b], DType::F64, &dims)
}

fn scalar(bld: &mut Builder, suffix: &str, v: f64) -> ValueRef {
    bld.constant(suffix, Tensor::scalar(v))
}

/// Rewrites a training-mode BatchNormalization node `id`; leaves other forms as they are.
pub fn decompose_batch_norm(g: &mut Graph, id: NodeId) {
    let node = g.node(id);
    let Op::BatchNormalization {
        epsilon,
        momentum,
        training_mode,
    } = node.op
    else {
        return;
    };
    if training_mode == 0 {
        return;
    }
    let Some(ins) = (0..5)
        .map(|i| node.inputs.get(i).copied().flatten())
        .collect::<Option<Vec<ValueRef>>>()
    else {
        return;
    };
    let Some(xs) = known(g, ins[0]) else {
        return;
    };
    if xs.len() < 2 || xs[1] == 0 || xs.iter().product::<usize>() == 0 {
        return;
    }
    let c = xs[1];
    if ins.iter().any(|&v| !float(g.dtype(v)))
        || ins[1..]
            .iter()
            .any(|&v| known(g, v).is_none_or(|s| s.iter().product::<usize>() != c))
    {
        return;
    }
    let outs: Vec<(DType, Option<Vec<usize>>)> = node
        .outputs
        .iter()
        .map(|o| (o.ty.dtype, o.ty.shape.as_known()))
        .collect();
    let dt = g.dtype(ins[0]);
    if outs[0] != (dt, Some(xs.clone())) {
        return;
    }
    for (k, o) in outs.iter().enumerate().skip(1) {
        if *o != (g.dtype(ins[2 + k]), Some(vec![c])) {
            return;
        }
    }
    let mut chan = vec![1; xs.len()];
    chan[1] = c;
    let axes: Vec<usize> = (0..xs.len()).filter(|&a| a != 1).collect();
    let mut bld = Builder::for_node(g, id);
    let x = widen(&mut bld, "x.f64", ins[0]);
    let scale = widen(&mut bld, "scale.f64", ins[1]);
    let scale = bld.reshape("scale.channels", scale, &chan);
    let bias = widen(&mut bld, "bias.f64", ins[2]);
    let bias = bld.reshape("bias.channels", bias, &chan);
    let m = mean(&mut bld, "mean", x, &axes);
    let d = bin(&mut bld, "centered", Op::Sub {}, x, m);
    let d2 = bin(&mut bld, "squares", Op::Mul {}, d, d);
    let v = mean(&mut bld, "var", d2, &axes);
    let eps = scalar(&mut bld, "eps", epsilon as f64);
    let ve = bin(&mut bld, "var.eps", Op::Add {}, v, eps);
    let sd = bld.add("std", Op::Sqrt {}, vec![ve], DType::F64, &chan);
    let q = bin(&mut bld, "normalized", Op::Div {}, d, sd);
    let qs = bin(&mut bld, "scaled", Op::Mul {}, q, scale);
    let y = bin(&mut bld, "shifted", Op::Add {}, qs, bias);
    // Running statistics: input · momentum + batch · (1 - momentum).
    let momentum = momentum as f64;
    let keep = scalar(&mut bld, "momentum", momentum);
    let take = scalar(&mut bld, "momentum.rest", 1.0 - momentum);
    let mut others = Vec::new();
    for (k, (what, batch)) in [("running_mean", m), ("running_var", v)].iter().enumerate() {
        if outs.len() < k + 2 {
            break;
        }
        let input = widen(&mut bld, &format!("{what}.in.f64"), ins[3 + k]);
        let input = bld.reshape(&format!("{what}.in"), input, &[c]);
        let batch = bld.reshape(&format!("{what}.batch"), *batch, &[c]);
        let a = bin(&mut bld, &format!("{what}.kept"), Op::Mul {}, input, keep);
        let b = bin(&mut bld, &format!("{what}.taken"), Op::Mul {}, batch, take);
        let r = bin(&mut bld, &format!("{what}.f64"), Op::Add {}, a, b);
        let odt = outs[k + 1].0;
        others.push(if odt == DType::F64 {
            r
        } else {
            bld.add(what, narrow(odt), vec![r], odt, &[c])
        });
    }
    let (op, inputs) = if dt == DType::F64 {
        let s = bld.shape("y.shape", &xs);
        (Op::Reshape { allowzero: 0 }, vec![y, s])
    } else {
        (narrow(dt), vec![y])
    };
    become_last_step(bld.g, id, op, inputs, &others);
}

/// Rewrites a MeanVarianceNormalization node `id`; leaves other forms as they are.
pub fn decompose_mvn(g: &mut Graph, id: NodeId) {
    let node = g.node(id);
    let Op::MeanVarianceNormalization { axes } = &node.op else {
        return;
    };
    let Some(x) = node.inputs.first().copied().flatten() else {
        return;
    };
    let dt = g.dtype(x);
    let Some(xs) = known(g, x) else {
        return;
    };
    if !float(dt) || node.outputs.len() != 1 || node.outputs[0].ty.dtype != dt {
        return;
    }
    // No axes: the reference normalizes nothing away (each element alone).
    if axes.is_empty() {
        return;
    }
    let r = xs.len() as i64;
    let mut ax = Vec::new();
    for &a in axes {
        let a = if a < 0 { a + r } else { a };
        if !(0..r).contains(&a) || ax.contains(&(a as usize)) {
            return;
        }
        ax.push(a as usize);
    }
    if xs.iter().product::<usize>() == 0 {
        return;
    }
    let mut bld = Builder::for_node(g, id);
    let xd = widen(&mut bld, "x.f64", x);
    let m = mean(&mut bld, "mean", xd, &ax);
    let sq = bin(&mut bld, "squares", Op::Mul {}, xd, xd);
    let msq = mean(&mut bld, "mean_square", sq, &ax);
    let m2 = bin(&mut bld, "mean.squared", Op::Mul {}, m, m);
    let var = bin(&mut bld, "var", Op::Sub {}, msq, m2);
    let mdims = known(bld.g, var).expect("static");
    let sd = bld.add("std", Op::Sqrt {}, vec![var], DType::F64, &mdims);
    let tiny = scalar(&mut bld, "tiny", 1e-9);
    let sd = bin(&mut bld, "std.tiny", Op::Add {}, sd, tiny);
    let d = bin(&mut bld, "centered", Op::Sub {}, xd, m);
    let y = bin(&mut bld, "normalized", Op::Div {}, d, sd);
    let (op, inputs) = if dt == DType::F64 {
        let s = bld.shape("y.shape", &xs);
        (Op::Reshape { allowzero: 0 }, vec![y, s])
    } else {
        (narrow(dt), vec![y])
    };
    become_last_step(bld.g, id, op, inputs, &[]);
}
