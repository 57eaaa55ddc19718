//! graphc's blocked channel layout (NCHWc) in terms of standard ops.
//!
//! A blocked tensor is `[N, ceil(C/c), spatial..., c]` for an NCHW tensor `[N, C, spatial...]`
//! and a block `c` (8 for AVX2: one ymm register of f32): channel `k` is at block `k / c`,
//! lane `k % c`, and lanes past `C` are zero. Two reorders convert between the layouts, and
//! each of them is spelled out here as standard ops ([`ReorderStep`]: Pad, Reshape,
//! Transpose, Slice); a blocked op is its NCHW op between reorders ([`Unblocked`]): its
//! blocked inputs reordered back to NCHW, the NCHW op, its output reordered to blocked (so
//! the output's padding lanes are zero by definition). The reference evaluator, shape
//! inference and ONNX export all go through these definitions, so a blocked op means exactly
//! its standard ops.
//!
//! Weights stay in their standard layout (`[M, C/group, k...]`): a blocked convolution
//! kernel packs them into its own `[M/c, C/c, kh, kw, c_in, c_out]` panels at compile time,
//! as the GEMM family already packs its B panels. So BatchNorm and channel folding keep
//! working on one weight tensor, and the e-graph holds no second copy of the weights.
//!
//! Elementwise ops need no blocked form: an op that maps zero to zero (Relu, Add, Mul, ...)
//! applied to blocked tensors of equal shape, or to a blocked tensor and a per-channel
//! constant reordered the same way, computes the blocked result with zero padding; the layout
//! rules (`rules::layout`) only move such ops into blocked regions.

use super::{Op, Tensor};

/// The largest block accepted (a lane count; AVX-512 uses 16).
pub const MAX_BLOCK: i64 = 64;

/// A blocked op spelled out: its NCHW op, and how each input is read.
#[derive(Clone, Debug, PartialEq)]
pub struct Unblocked {
    /// The NCHW op (`fused_conv`, `max_pool`, `average_pool`, `global_average_pool`).
    pub inner: Op,
    /// The block.
    pub block: usize,
    /// How each input is read; inputs past the end are read as they are.
    pub inputs: Vec<InputKind>,
}

/// How a blocked op reads one of its inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InputKind {
    /// As it is (weights, bias).
    Plain,
    /// A blocked tensor reordered to NCHW with as many channels as the weights' input
    /// channels (`w[1] * group`).
    BlockedConvInput,
    /// A blocked tensor reordered to NCHW with as many channels as the weights' output
    /// channels (`w[0]`): the residual of a convolution.
    BlockedConvOutput,
    /// A blocked tensor reordered to NCHW keeping every lane (`ceil(C/c) * c` channels): a
    /// per-channel op maps the zero padding lanes to zero.
    BlockedAllLanes,
}

/// Checks a `block` attribute.
pub fn check_block(block: i64) -> Result<usize, String> {
    if (1..=MAX_BLOCK).contains(&block) {
        Ok(block as usize)
    } else {
        Err(format!("block {block} is not in 1..={MAX_BLOCK}"))
    }
}

impl Op {
    /// Whether this is a blocked op or a reorder (graphc's NCHWc layout ops).
    pub fn is_layout(&self) -> bool {
        matches!(
            self,
            Op::ReorderToBlocked { .. }
                | Op::ReorderFromBlocked { .. }
                | Op::BlockedConv { .. }
                | Op::BlockedMaxPool { .. }
                | Op::BlockedAveragePool { .. }
                | Op::BlockedGlobalAveragePool { .. }
        )
    }

    /// A blocked op's NCHW form; `None` for other ops (reorders included). A bad block is
    /// an error.
    pub fn unblock(&self) -> Option<Result<Unblocked, String>> {
        use InputKind::*;
        let (inner, block, inputs) = match self {
            Op::BlockedConv {
                auto_pad,
                dilations,
                group,
                kernel_shape,
                pads,
                strides,
                activation,
                alpha,
                beta,
                block,
            } => (
                Op::FusedConv {
                    auto_pad: *auto_pad,
                    dilations: dilations.clone(),
                    group: *group,
                    kernel_shape: kernel_shape.clone(),
                    pads: pads.clone(),
                    strides: strides.clone(),
                    activation: activation.clone(),
                    alpha: *alpha,
                    beta: *beta,
                },
                *block,
                vec![BlockedConvInput, Plain, Plain, BlockedConvOutput],
            ),
            Op::BlockedMaxPool {
                auto_pad,
                ceil_mode,
                dilations,
                kernel_shape,
                pads,
                strides,
                block,
            } => (
                Op::MaxPool {
                    auto_pad: *auto_pad,
                    ceil_mode: *ceil_mode,
                    dilations: dilations.clone(),
                    kernel_shape: kernel_shape.clone(),
                    pads: pads.clone(),
                    storage_order: 0,
                    strides: strides.clone(),
                },
                *block,
                vec![BlockedAllLanes],
            ),
            Op::BlockedAveragePool {
                auto_pad,
                ceil_mode,
                count_include_pad,
                dilations,
                kernel_shape,
                pads,
                strides,
                block,
            } => (
                Op::AveragePool {
                    auto_pad: *auto_pad,
                    ceil_mode: *ceil_mode,
                    count_include_pad: *count_include_pad,
                    dilations: dilations.clone(),
                    kernel_shape: kernel_shape.clone(),
                    pads: pads.clone(),
                    strides: strides.clone(),
                },
                *block,
                vec![BlockedAllLanes],
            ),
            Op::BlockedGlobalAveragePool { block } => {
                (Op::GlobalAveragePool {}, *block, vec![BlockedAllLanes])
            }
            _ => return None,
        };
        Some(check_block(block).map(|block| Unblocked {
            inner,
            block,
            inputs,
        }))
    }

    /// The blocked form of an NCHW op with `block` (`None` for ops without one). A MaxPool
    /// with its optional indices output has none: only its first output is blocked.
    pub fn blocked(inner: &Op, block: i64) -> Option<Op> {
        Some(match inner.clone() {
            Op::FusedConv {
                auto_pad,
                dilations,
                group,
                kernel_shape,
                pads,
                strides,
                activation,
                alpha,
                beta,
            } => Op::BlockedConv {
                auto_pad,
                dilations,
                group,
                kernel_shape,
                pads,
                strides,
                activation,
                alpha,
                beta,
                block,
            },
            Op::MaxPool {
                auto_pad,
                ceil_mode,
                dilations,
                kernel_shape,
                pads,
                storage_order: _,
                strides,
            } => Op::BlockedMaxPool {
                auto_pad,
                ceil_mode,
                dilations,
                kernel_shape,
                pads,
                strides,
                block,
            },
            Op::AveragePool {
                auto_pad,
                ceil_mode,
                count_include_pad,
                dilations,
                kernel_shape,
                pads,
                strides,
            } => Op::BlockedAveragePool {
                auto_pad,
                ceil_mode,
                count_include_pad,
                dilations,
                kernel_shape,
                pads,
                strides,
                block,
            },
            Op::GlobalAveragePool {} => Op::BlockedGlobalAveragePool { block },
            _ => return None,
        })
    }
}

impl Unblocked {
    /// The NCHW channel count input `k` is reordered to, from the weights' dims (`w`, unknown
    /// dims `None`) and the blocked input's dims; `None` for an input read as it is.
    pub fn channels(
        &self,
        k: usize,
        w: Option<&[Option<usize>]>,
        blocked: &[Option<usize>],
    ) -> Result<Option<usize>, String> {
        let group = match &self.inner {
            Op::FusedConv { group, .. } => usize::try_from(*group)
                .ok()
                .filter(|g| *g > 0)
                .ok_or("group must be positive")?,
            _ => 1,
        };
        let wdim = |i: usize| {
            w.and_then(|w| w.get(i).copied().flatten())
                .ok_or("the weights' shape is unknown")
        };
        match self.inputs.get(k).copied().unwrap_or(InputKind::Plain) {
            InputKind::Plain => Ok(None),
            InputKind::BlockedConvInput => Ok(Some(
                wdim(1)?
                    .checked_mul(group)
                    .ok_or("channel count overflows")?,
            )),
            InputKind::BlockedConvOutput => Ok(Some(wdim(0)?)),
            InputKind::BlockedAllLanes => {
                let cb = blocked
                    .get(1)
                    .copied()
                    .flatten()
                    .ok_or("the blocked input's block count is unknown")?;
                Ok(Some(
                    cb.checked_mul(self.block)
                        .ok_or("channel count overflows")?,
                ))
            }
        }
    }
}

/// An argument of a [`ReorderStep`].
#[derive(Clone, Debug, PartialEq)]
pub enum StepArg {
    /// The reorder's input.
    X,
    /// The previous step's result.
    Prev,
    /// A constant.
    Const(Tensor),
}

/// One standard op of a reorder.
#[derive(Clone, Debug, PartialEq)]
pub struct ReorderStep {
    /// The op.
    pub op: Op,
    /// Its inputs.
    pub args: Vec<StepArg>,
}

fn i64s(v: &[i64]) -> Tensor {
    Tensor::from_vec(&[v.len()], v.to_vec()).expect("a vector's shape matches its length")
}

/// A Reshape target for `out` dims (`None` unknown): exact with `allowzero` when every dim is
/// known; otherwise the batch dim copied (0) and at most one other unknown dim as -1.
fn reshape_target(out: &[Option<usize>]) -> Result<(Vec<i64>, i64), String> {
    let to_i64 = |d: usize| i64::try_from(d).map_err(|_| "dim too large".to_string());
    if out.iter().all(Option::is_some) {
        let v = out
            .iter()
            .flatten()
            .map(|&d| to_i64(d))
            .collect::<Result<_, _>>()?;
        return Ok((v, 1));
    }
    let mut v = Vec::with_capacity(out.len());
    let mut free = false;
    for (i, d) in out.iter().enumerate() {
        v.push(match d {
            None if i == 0 => 0,
            None if !free => {
                free = true;
                -1
            }
            None => return Err("a reorder needs all but one spatial dim known".into()),
            Some(0) => return Err("a reorder of an empty dim needs every dim known".into()),
            Some(d) => to_i64(*d)?,
        });
    }
    Ok((v, 0))
}

/// `reorder_to_blocked` as standard ops, for an input of dims `x` (`None` unknown):
/// Pad the channels to a multiple of `block` (when needed), Reshape to
/// `[N, C/c, c, spatial...]`, Transpose the lane axis last.
pub fn to_blocked_steps(x: &[Option<usize>], block: usize) -> Result<Vec<ReorderStep>, String> {
    if x.len() < 3 {
        return Err(format!(
            "a reorder needs rank 3 or more, got rank {}",
            x.len()
        ));
    }
    let c = x[1].ok_or("a reorder needs the channel count known")?;
    let blocks = c.div_ceil(block);
    let padded = blocks * block;
    let mut steps = Vec::new();
    if padded != c {
        let mut pads = vec![0i64; 2 * x.len()];
        pads[x.len() + 1] = (padded - c) as i64;
        steps.push(ReorderStep {
            op: Op::Pad {
                mode: "constant".into(),
            },
            args: vec![StepArg::X, StepArg::Const(i64s(&pads))],
        });
    }
    let mut out = vec![x[0], Some(blocks), Some(block)];
    out.extend_from_slice(&x[2..]);
    let (target, allowzero) = reshape_target(&out)?;
    let prev = if steps.is_empty() {
        StepArg::X
    } else {
        StepArg::Prev
    };
    steps.push(ReorderStep {
        op: Op::Reshape { allowzero },
        args: vec![prev, StepArg::Const(i64s(&target))],
    });
    let r = out.len() as i64;
    let mut perm = vec![0, 1];
    perm.extend(3..r);
    perm.push(2);
    steps.push(ReorderStep {
        op: Op::Transpose { perm: Some(perm) },
        args: vec![StepArg::Prev],
    });
    Ok(steps)
}

/// `reorder_from_blocked` as standard ops, for a blocked input of dims `xb`: Transpose the
/// lane axis next to the block axis, Reshape to `[N, C/c * c, spatial...]`, Slice the first
/// `channels` (when there is padding).
pub fn from_blocked_steps(
    xb: &[Option<usize>],
    block: usize,
    channels: usize,
) -> Result<Vec<ReorderStep>, String> {
    let r = xb.len();
    if r < 4 {
        return Err(format!("a blocked tensor has rank 4 or more, got rank {r}"));
    }
    let blocks = xb[1].unwrap_or(channels.div_ceil(block));
    if xb[r - 1].is_some_and(|b| b != block) {
        return Err(format!(
            "the blocked tensor's last dim is {:?}, not the block {block}",
            xb[r - 1]
        ));
    }
    check_channels(blocks, block, channels)?;
    let mut perm = vec![0i64, 1, r as i64 - 1];
    perm.extend(2..r as i64 - 1);
    let mut steps = vec![ReorderStep {
        op: Op::Transpose { perm: Some(perm) },
        args: vec![StepArg::X],
    }];
    let mut out = vec![xb[0], Some(blocks * block)];
    out.extend_from_slice(&xb[2..r - 1]);
    let (target, allowzero) = reshape_target(&out)?;
    steps.push(ReorderStep {
        op: Op::Reshape { allowzero },
        args: vec![StepArg::Prev, StepArg::Const(i64s(&target))],
    });
    if channels != blocks * block {
        steps.push(ReorderStep {
            op: Op::Slice {},
            args: vec![
                StepArg::Prev,
                StepArg::Const(i64s(&[0])),
                StepArg::Const(i64s(&[channels as i64])),
                StepArg::Const(i64s(&[1])),
            ],
        });
    }
    Ok(steps)
}

/// `channels` fit `blocks` blocks of `block` lanes with less than one block of padding.
pub fn check_channels(blocks: usize, block: usize, channels: usize) -> Result<(), String> {
    if channels.div_ceil(block) != blocks {
        return Err(format!(
            "{channels} channels do not fill {blocks} blocks of {block}"
        ));
    }
    Ok(())
}
