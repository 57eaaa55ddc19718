//! Types of the blocked layout ops (`ir::blocked`): reorders move the channel axis, and a
//! blocked op has the type of its NCHW op between reorders.

use super::dims::{req, ty, unify, Res};
use super::{rule, Fact};
use crate::ir::blocked::{check_block, check_channels};
use crate::ir::{Dim, Op, Shape, TypeInfo};

fn known_dims(t: &TypeInfo) -> Option<Vec<Option<usize>>> {
    t.shape.dims().map(|d| d.iter().map(Dim::known).collect())
}

/// `reorder_to_blocked`: `[N, C, S...]` to `[N, ceil(C/c), S..., c]`.
pub fn to_blocked(x: &TypeInfo, block: i64) -> Res<TypeInfo> {
    let b = check_block(block)?;
    let Some(d) = x.shape.dims() else {
        return Ok(ty(x.dtype, Shape::Unranked));
    };
    if d.len() < 3 {
        return Err(format!("a reorder needs rank 3 or more, got {x}"));
    }
    let c = d[1]
        .known()
        .ok_or_else(|| format!("a reorder needs the channel count known, got {x}"))?;
    let mut out = vec![d[0].clone(), Dim::Known(c.div_ceil(b))];
    out.extend_from_slice(&d[2..]);
    out.push(Dim::Known(b));
    Ok(ty(x.dtype, Shape::Ranked(out)))
}

/// `reorder_from_blocked`: `[N, ceil(C/c), S..., c]` to `[N, C, S...]`.
pub fn from_blocked(xb: &TypeInfo, block: i64, channels: i64) -> Res<TypeInfo> {
    let b = check_block(block)?;
    let c = usize::try_from(channels).map_err(|_| format!("bad channel count {channels}"))?;
    let Some(d) = xb.shape.dims() else {
        return Ok(ty(xb.dtype, Shape::Unranked));
    };
    let r = d.len();
    if r < 4 {
        return Err(format!("a blocked tensor has rank 4 or more, got {xb}"));
    }
    if unify(&d[r - 1], &Dim::Known(b)).is_none() {
        return Err(format!("{xb} is not blocked by {b}"));
    }
    if let Some(blocks) = d[1].known() {
        check_channels(blocks, b, c)?;
    }
    let mut out = vec![d[0].clone(), Dim::Known(c)];
    out.extend_from_slice(&d[2..r - 1]);
    Ok(ty(xb.dtype, Shape::Ranked(out)))
}

/// A blocked op: its blocked inputs' NCHW types, the NCHW op's type, reordered to blocked.
pub fn blocked_op(op: &Op, ins: &[Option<Fact<'_>>]) -> Res<TypeInfo> {
    let u = op.unblock().ok_or("not a blocked op")??;
    req(ins, 0)?;
    let w = ins.get(1).copied().flatten().and_then(|f| known_dims(f.ty));
    let mut nchw: Vec<Option<TypeInfo>> = Vec::with_capacity(ins.len());
    for (k, f) in ins.iter().enumerate() {
        nchw.push(match f {
            None => None,
            Some(f) => {
                let d = known_dims(f.ty).ok_or("a blocked input has unknown rank")?;
                match u.channels(k, w.as_deref(), &d)? {
                    None => Some(f.ty.clone()),
                    Some(c) => Some(from_blocked(f.ty, u.block as i64, c as i64)?),
                }
            }
        });
    }
    let facts: Vec<Option<Fact<'_>>> = nchw
        .iter()
        .zip(ins)
        .map(|(t, f)| {
            t.as_ref().map(|t| Fact {
                ty: t,
                // Plain inputs (weights, bias) keep their values.
                value: f.and_then(|f| (f.ty == t).then_some(f.value).flatten()),
            })
        })
        .collect();
    let y = rule(&u.inner, &facts, 1)?.remove(0);
    to_blocked(&y, u.block as i64)
}
