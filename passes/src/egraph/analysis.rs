//! The e-class analysis: element type and shape of every class (from `infer::infer_op`) and
//! its constant value when known (folded with `eval::eval_op` once every input is constant).
//!
//! Folding budget: a fold runs when its inputs total at most [`FOLD_INPUT_LIMIT`] elements
//! and its result has at most [`FOLD_SMALL`] elements or at most [`FOLD_GROWTH`] times the
//! elements of its inputs. So shape arithmetic and the weights of the light models (built by
//! `ConstantOfShape` of up to 1M elements, which a Conv needs as data) fold, while an
//! `Expand`/`Tile`/`ConstantOfShape` that would blow a small value up into a huge constant
//! stays an op (a rule that needs such a value as data, to rewrite weights, materializes it:
//! `rules::materialize`). `Shape` and `Size` of a value with a static shape fold from its
//! type. When a single-value class becomes constant, `modify` adds a `constant` node
//! to it, so extraction can pick it (at cost 0). Graph inputs with a default (initializer)
//! count as constants, as in `infer_graph`: compiled code is specialized to them.
//!
//! A class standing for a tuple (a node with other than one output) records one type (and
//! value) per output; its `get.i` nodes read entry `i`.

use std::sync::Arc;

use egg::{DidMerge, EGraph, Id};

use super::lang::{ENode, Head, KeyedOp};
use crate::infer::{infer_op, Fact};
use crate::ir::{Dim, Op, Shape, Tensor, TypeInfo};

/// Results up to this many elements always fold.
pub const FOLD_SMALL: usize = 1 << 20;
/// Larger results fold when at most this many times the inputs' elements.
pub const FOLD_GROWTH: usize = 4;
/// Folds never read more than this many input elements.
pub const FOLD_INPUT_LIMIT: usize = 1 << 24;

/// The e-graph type of graphc.
pub type EG = EGraph<ENode, GraphAnalysis>;

/// The analysis: it knows the types of the graph inputs and their defaults.
#[derive(Debug, Default)]
pub struct GraphAnalysis {
    /// Type of each graph input, in signature order.
    pub inputs: Vec<TypeInfo>,
    /// Default (initializer) of each graph input, as a `constant` op. Like `infer_graph`,
    /// the optimizer specializes the graph to these values: they fold into their consumers.
    pub defaults: Vec<Option<Arc<KeyedOp>>>,
}

/// What is known about one e-class.
#[derive(Debug, Clone)]
pub struct Data {
    /// One type per output (one for a value class); `None` when inference failed.
    pub types: Option<Vec<TypeInfo>>,
    /// Values, as `constant` ops (one per output), when all are known.
    pub value: Option<Vec<Arc<KeyedOp>>>,
    /// The class is the absent input `_`.
    pub absent: bool,
    /// The class stands for a tuple of outputs.
    pub tuple: bool,
}

impl Data {
    /// The type of a value class.
    pub fn ty(&self) -> Option<&TypeInfo> {
        match &self.types {
            Some(t) if !self.tuple && t.len() == 1 => t.first(),
            _ => None,
        }
    }

    /// The constant value of a value class.
    pub fn tensor(&self) -> Option<&Tensor> {
        match &self.value {
            Some(v) if !self.tuple && v.len() == 1 => v[0].tensor(),
            _ => None,
        }
    }
}

/// How much is known about a shape (for merging): known dims count most, then symbols.
fn knowledge(s: &Shape) -> usize {
    match s.dims() {
        None => 0,
        Some(d) => {
            1 + d
                .iter()
                .map(|d| match d {
                    Dim::Known(_) => 3,
                    Dim::Sym(_) => 2,
                    Dim::Unknown => 1,
                })
                .sum::<usize>()
        }
    }
}

fn known_elems(t: &TypeInfo) -> Option<usize> {
    t.shape.num_elements()
}

/// Whether an op may be folded at compile time (not inputs, subgraph ops or Dropout, whose
/// value in training mode is random).
fn foldable(op: &Op) -> bool {
    !matches!(
        op,
        Op::Input { .. } | Op::Dropout { .. } | Op::If { .. } | Op::Loop { .. } | Op::Scan { .. }
    )
}

/// Folds `op` when the budget allows (see the module docs).
fn fold(op: &Op, args: &[Option<&Tensor>], outs: &[TypeInfo]) -> Option<Vec<Arc<KeyedOp>>> {
    if !foldable(op) {
        return None;
    }
    let in_total = args
        .iter()
        .flatten()
        .try_fold(0usize, |a, t| a.checked_add(t.len()))?;
    let out_total = outs
        .iter()
        .try_fold(0usize, |a, t| a.checked_add(known_elems(t)?))?;
    if in_total > FOLD_INPUT_LIMIT
        || (out_total > FOLD_SMALL && out_total > FOLD_GROWTH.saturating_mul(in_total))
    {
        return None;
    }
    let values = crate::eval::eval_op(op, args, outs.len()).ok()?;
    let fits = values.len() == outs.len()
        && values.iter().zip(outs).all(|(v, t)| {
            v.dtype() == t.dtype && t.shape.as_known().is_some_and(|s| s == v.shape())
        });
    fits.then(|| values.into_iter().map(KeyedOp::constant).collect())
}

impl egg::Analysis<ENode> for GraphAnalysis {
    type Data = Data;

    fn make(eg: &mut EG, n: &ENode) -> Data {
        let plain = |types: Option<Vec<TypeInfo>>| Data {
            types,
            value: None,
            absent: false,
            tuple: false,
        };
        match &n.head {
            Head::Absent => Data {
                types: Some(vec![]),
                value: None,
                absent: true,
                tuple: false,
            },
            Head::Pattern(..) => plain(None),
            Head::Input(i) => Data {
                value: eg
                    .analysis
                    .defaults
                    .get(*i)
                    .cloned()
                    .flatten()
                    .map(|k| vec![k]),
                ..plain(eg.analysis.inputs.get(*i).map(|t| vec![t.clone()]))
            },
            Head::Get(i) => {
                let d = &eg[n.children[0]].data;
                Data {
                    types: d
                        .types
                        .as_ref()
                        .and_then(|t| t.get(*i))
                        .map(|t| vec![t.clone()]),
                    value: d
                        .value
                        .as_ref()
                        .and_then(|v| v.get(*i))
                        .map(|v| vec![v.clone()]),
                    absent: false,
                    tuple: false,
                }
            }
            Head::Op(k) => {
                if let Some(t) = k.tensor() {
                    let ty = TypeInfo {
                        dtype: t.dtype(),
                        shape: Shape::known(t.shape()),
                    };
                    return Data {
                        types: Some(vec![ty]),
                        value: Some(vec![k.clone()]),
                        absent: false,
                        tuple: false,
                    };
                }
                let tuple = k.n_out != 1;
                let kids: Vec<&Data> = n.children.iter().map(|c| &eg[*c].data).collect();
                // A child whose type is unknown makes this one unknown too.
                let mut facts = Vec::with_capacity(kids.len());
                for d in &kids {
                    if d.absent {
                        facts.push(None);
                    } else {
                        match d.ty() {
                            Some(ty) => facts.push(Some(Fact {
                                ty,
                                value: d.tensor(),
                            })),
                            None => {
                                return Data {
                                    types: None,
                                    value: None,
                                    absent: false,
                                    tuple,
                                }
                            }
                        }
                    }
                }
                let types = infer_op(&k.op, &facts, k.n_out).ok();
                let value = match &types {
                    Some(outs) if kids.iter().all(|d| d.absent || d.tensor().is_some()) => {
                        let args: Vec<Option<&Tensor>> = kids.iter().map(|d| d.tensor()).collect();
                        fold(&k.op, &args, outs)
                    }
                    // Shape arithmetic on static shapes: the value comes from the type.
                    Some(outs) if matches!(k.op, Op::Shape { .. } | Op::Size {}) => {
                        crate::infer::fold(&k.op, &facts, outs)
                            .map(|v| v.into_iter().map(KeyedOp::constant).collect())
                    }
                    _ => None,
                };
                Data {
                    types,
                    value,
                    absent: false,
                    tuple,
                }
            }
        }
    }

    fn merge(&mut self, a: &mut Data, b: Data) -> DidMerge {
        let mut changed = (false, false);
        match (&mut a.types, b.types) {
            (None, Some(t)) => {
                a.types = Some(t);
                changed.0 = true;
            }
            (Some(_), None) => changed.1 = true,
            (Some(ta), Some(tb)) => {
                let ka: usize = ta.iter().map(|t| knowledge(&t.shape)).sum();
                let kb: usize = tb.iter().map(|t| knowledge(&t.shape)).sum();
                if kb > ka {
                    *ta = tb;
                    changed.0 = true;
                } else if ka > kb {
                    changed.1 = true;
                }
            }
            (None, None) => {}
        }
        match (&a.value, b.value) {
            (None, Some(v)) => {
                a.value = Some(v);
                changed.0 = true;
            }
            (Some(_), None) => changed.1 = true,
            _ => {}
        }
        a.absent |= b.absent;
        DidMerge(changed.0, changed.1)
    }

    fn modify(eg: &mut EG, id: Id) {
        // An input with a default keeps being read as the input (no copy of the tensor).
        if eg[id]
            .nodes
            .iter()
            .any(|n| matches!(n.head, Head::Input(_)))
        {
            return;
        }
        let k = match &eg[id].data.value {
            Some(v) if !eg[id].data.tuple && v.len() == 1 => v[0].clone(),
            _ => return,
        };
        let c = eg.add(ENode::leaf(Head::Op(k)));
        eg.union(id, c);
    }
}
