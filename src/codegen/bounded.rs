//! Outputs whose shape the data decides (NonZero, Compress, Unique, NonMaxSuppression).
//!
//! Compiled code has a fixed buffer per value, so such an output is compiled with an *upper
//! bound* of its shape, computed here from the input shapes and constant parameters. Its buffer
//! holds the bound; the kernel writes the actual tensor densely (row-major for the actual dims)
//! at the start of the buffer and the actual dims into an `i64` array
//! ([`Operand::Dims`](super::kernel::Operand::Dims)). The entry function receives that array
//! after the output buffers; the JIT and the library's `NAME_run_with_shapes` hand the actual
//! dims to the caller.
//!
//! Only model outputs can be bounded: a node reading such a value would need shapes known at
//! run time, which compiled kernels do not have.

use std::collections::HashMap;

use graphc_passes::ir::{Graph, NodeId, Op, Shape, ValueRef};

/// An upper bound of a value's shape, and the one dim the data decides (the others are
/// exact).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bound {
    /// The bound.
    pub dims: Vec<usize>,
    /// The dim the data decides: NonZero's count, the compressed axis, Unique's items,
    /// NonMaxSuppression's rows.
    pub varying: usize,
}

impl Bound {
    fn new(dims: Vec<usize>, varying: usize) -> Bound {
        Bound { dims, varying }
    }
}

/// The outputs of `node` whose shape the data decides, each with its [`Bound`]; `None` for
/// ops without such outputs or when an input shape is not static.
pub fn data_dependent_bounds(g: &Graph, node: NodeId) -> Option<Vec<(usize, Bound)>> {
    let n = g.node(node);
    let in_shape = |i: usize| -> Option<Vec<usize>> {
        g.ty(n.inputs.get(i).copied().flatten()?).shape.as_known()
    };
    let axis_of = |a: i64, rank: usize| -> Option<usize> {
        let a = if a < 0 { a + rank as i64 } else { a };
        (0..rank as i64).contains(&a).then_some(a as usize)
    };
    let ports = n.outputs.len();
    let bounds = match &n.op {
        Op::NonZero {} => {
            let x = in_shape(0)?;
            vec![(0, Bound::new(vec![x.len(), x.iter().product()], 1))]
        }
        Op::Compress { axis } => {
            let x = in_shape(0)?;
            let c: usize = in_shape(1)?.iter().product();
            match axis {
                Some(a) => {
                    let a = axis_of(*a, x.len())?;
                    let mut d = x;
                    d[a] = d[a].min(c);
                    vec![(0, Bound::new(d, a))]
                }
                None => vec![(0, Bound::new(vec![x.iter().product::<usize>().min(c)], 0))],
            }
        }
        Op::Unique { axis, .. } => {
            let x = in_shape(0)?;
            let (y, a) = match axis {
                Some(a) => {
                    let a = axis_of(*a, x.len())?;
                    (x, a)
                }
                None => (vec![x.iter().product()], 0),
            };
            let items = y[a];
            // Y, the first index of each unique item, (inverse indices: one per item, a
            // static shape,) the count of each.
            [
                (0, Bound::new(y, a)),
                (1, Bound::new(vec![items], 0)),
                (3, Bound::new(vec![items], 0)),
            ]
            .into_iter()
            .filter(|(p, _)| *p < ports)
            .collect()
        }
        Op::NonMaxSuppression { .. } => {
            let boxes = in_shape(0)?;
            let scores = in_shape(1)?;
            let (&[batches, spatial, _], &[_, classes, _]) = (boxes.as_slice(), scores.as_slice())
            else {
                return None;
            };
            // At most `max_output_boxes_per_class` boxes per batch and class (0 when absent).
            let per_class = match n.inputs.get(2).copied().flatten() {
                None => 0,
                Some(v) => match &g.node(v.node).op {
                    Op::Constant { value } => match value.to_i64_vec().ok()?.first() {
                        Some(&m) => spatial.min(m.max(0) as usize),
                        None => 0,
                    },
                    _ => spatial,
                },
            };
            vec![(0, Bound::new(vec![batches * classes * per_class, 3], 0))]
        }
        _ => return None,
    };
    Some(bounds)
}

/// The bounded values of `g` that may be compiled as such (model outputs listed once, read by
/// no node), with their bounds, and the first one that may not, described for an error.
pub fn bounded_values(g: &Graph) -> (HashMap<ValueRef, Bound>, Option<String>) {
    let mut ok = HashMap::new();
    let mut refused = None;
    for (id, n) in g.nodes() {
        let Some(bounds) = data_dependent_bounds(g, id) else {
            continue;
        };
        for (port, bound) in bounds {
            let v = ValueRef {
                node: id,
                port: port as u32,
            };
            let listed = g.outputs.iter().filter(|o| o.value == v).count();
            let reader = g
                .consumers(id)
                .into_iter()
                .find(|&(_, _, p)| p as usize == port);
            let why = if let Some((reader, _, _)) = reader {
                Some(format!(
                    "is read by node '{}' ({})",
                    g.node(reader).display_name(),
                    g.node(reader).op.onnx_name()
                ))
            } else if listed > 1 {
                Some("is listed more than once as a model output".to_string())
            } else {
                None
            };
            match why {
                None => {
                    ok.insert(v, bound);
                }
                Some(why) => {
                    refused.get_or_insert_with(|| {
                        format!(
                            "value '{}' of node '{}' ({}) has a shape decided by the data and {why}; \
                             compiled code supports such values only as model outputs",
                            n.outputs[port].name,
                            n.display_name(),
                            n.op.onnx_name()
                        )
                    });
                }
            }
        }
    }
    (ok, refused)
}

/// `g` with the type of every value in `bounds` set to its bound.
pub fn with_bounds(g: &Graph, bounds: &HashMap<ValueRef, Bound>) -> Graph {
    let mut g = g.clone();
    for (v, b) in bounds {
        g.node_mut(v.node).outputs[v.port as usize].ty.shape = Shape::known(&b.dims);
    }
    g
}
