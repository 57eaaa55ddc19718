//! graphc's blocked layout ops (`ir::blocked`), evaluated as the standard ops they stand
//! for: reorders as their Pad/Reshape/Transpose/Slice steps, blocked ops as their NCHW op
//! between reorders.

use super::eval_op;
use crate::ir::blocked::{check_block, from_blocked_steps, to_blocked_steps, ReorderStep, StepArg};
use crate::ir::{Op, Tensor};

fn one(op: &Op, args: &[Option<&Tensor>]) -> Result<Tensor, String> {
    eval_op(op, args, 1)?
        .pop()
        .ok_or_else(|| format!("{} produced no output", op.onnx_name()))
}

fn run(steps: &[ReorderStep], x: &Tensor) -> Result<Tensor, String> {
    let mut cur: Option<Tensor> = None;
    for s in steps {
        let args: Vec<Option<&Tensor>> = s
            .args
            .iter()
            .map(|a| match a {
                StepArg::X => Some(x),
                StepArg::Prev => cur.as_ref().or(Some(x)),
                StepArg::Const(t) => Some(t),
            })
            .collect();
        let y = one(&s.op, &args)?;
        cur = Some(y);
    }
    Ok(cur.unwrap_or_else(|| x.clone()))
}

fn dims(t: &Tensor) -> Vec<Option<usize>> {
    t.shape().iter().map(|&d| Some(d)).collect()
}

/// `reorder_to_blocked`.
pub fn to_blocked(x: &Tensor, block: i64) -> Result<Tensor, String> {
    let b = check_block(block)?;
    run(&to_blocked_steps(&dims(x), b)?, x)
}

/// `reorder_from_blocked`.
pub fn from_blocked(xb: &Tensor, block: i64, channels: i64) -> Result<Tensor, String> {
    let b = check_block(block)?;
    let c = usize::try_from(channels).map_err(|_| format!("bad channel count {channels}"))?;
    run(&from_blocked_steps(&dims(xb), b, c)?, xb)
}

/// Evaluates a reorder or a blocked op.
pub fn eval(op: &Op, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, String> {
    let x = || inputs.first().copied().flatten().ok_or("missing input 0");
    match op {
        Op::ReorderToBlocked { block } => return Ok(vec![to_blocked(x()?, *block)?]),
        Op::ReorderFromBlocked { block, channels } => {
            return Ok(vec![from_blocked(x()?, *block, *channels)?])
        }
        _ => {}
    }
    let u = op.unblock().ok_or("not a blocked op")??;
    let w = inputs.get(1).copied().flatten().map(dims);
    let mut nchw: Vec<Option<Tensor>> = Vec::with_capacity(inputs.len());
    for (k, t) in inputs.iter().enumerate() {
        nchw.push(match t {
            None => None,
            Some(t) => match u.channels(k, w.as_deref(), &dims(t))? {
                None => Some((*t).clone()),
                Some(c) => Some(from_blocked(t, u.block as i64, c as i64)?),
            },
        });
    }
    let args: Vec<Option<&Tensor>> = nchw.iter().map(Option::as_ref).collect();
    let y = one(&u.inner, &args)?;
    Ok(vec![to_blocked(&y, u.block as i64)?])
}
