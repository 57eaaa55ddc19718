//! graphc's fused ops, evaluated as the standard ops they stand for (`ir::fused`), so a
//! fusion is checked against exactly what it replaced.

use super::eval_op;
use crate::ir::fused::{scalar_like, Activation, Operand};
use crate::ir::{Op, Tensor};

fn one(op: &Op, args: &[Option<&Tensor>]) -> Result<Tensor, String> {
    eval_op(op, args, 1)?
        .pop()
        .ok_or_else(|| format!("{} produced no output", op.onnx_name()))
}

/// Evaluates `fused_conv` or `fused_mat_mul`.
pub fn eval(op: &Op, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, String> {
    let u = op.unfuse().expect("routed for fused ops only")?;
    let main = &inputs[..inputs.len().min(u.main_inputs)];
    let mut y = one(&u.main, main)?;
    for extra in u.bias_input.into_iter().chain([u.residual_input]) {
        if let Some(Some(t)) = inputs.get(extra) {
            y = one(&Op::Add {}, &[Some(&y), Some(t)])?;
        }
    }
    Ok(vec![activate(&u.activation, y)?])
}

/// `fused_softmax`: Add, then Softmax over `axis`.
pub fn softmax(axis: i64, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, String> {
    let x = inputs.first().copied().flatten().ok_or("missing input x")?;
    let m = inputs
        .get(1)
        .copied()
        .flatten()
        .ok_or("missing input mask")?;
    let s = one(&Op::Add {}, &[Some(x), Some(m)])?;
    let op = Op::Softmax {
        axis,
        coerce_2d: false,
    };
    Ok(vec![one(&op, &[Some(&s)])?])
}

/// Applies an activation through its standard ops.
pub fn activate(act: &Activation, x: Tensor) -> Result<Tensor, String> {
    let steps = act.steps();
    let mut done: Vec<Tensor> = Vec::with_capacity(steps.len());
    for s in &steps {
        let scalars: Vec<Option<Tensor>> = s
            .args
            .iter()
            .map(|a| match a {
                Operand::Scalar(v) => Some(scalar_like(*v, x.dtype())),
                _ => None,
            })
            .collect();
        let args: Vec<Option<&Tensor>> = s
            .args
            .iter()
            .zip(&scalars)
            .map(|(a, sc)| match a {
                Operand::X => Some(&x),
                Operand::Prev(i) => done.get(*i),
                Operand::Scalar(_) => sc.as_ref(),
            })
            .collect();
        let y = one(&s.op, &args)?;
        done.push(y);
    }
    Ok(done.pop().unwrap_or(x))
}
