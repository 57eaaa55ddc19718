//! The IR verifier: checks the structural invariants every pass must keep. A failure always
//! means a bug in whatever produced the graph (importer, parser or pass), never bad user
//! input, so the error names the node and the broken rule rather than explaining a fix.
//!
//! Checked, per graph and recursively in subgraphs:
//! - the node order lists every live node exactly once;
//! - every input refers to a live node, a port it has, and a node earlier in the order
//!   (the order is topological);
//! - the petgraph edges into each node are exactly its present inputs (port and slot);
//! - `inputs` are exactly the `Op::Input` nodes, first in the order and in signature order;
//!   an input node has no inputs, one output, and a default that fits its type;
//! - outputs refer to valid values;
//! - non-empty value names are unique, and no input or output uses an unnamed value;
//! - a `Constant` defines one value whose type is its tensor's dtype and shape.
//!
//! Types are otherwise not checked against ops: that is shape inference's job.

use std::collections::{HashMap, HashSet};

use petgraph::visit::EdgeRef;
use petgraph::Direction;

use super::graph::{Graph, NodeId, ValueRef};
use super::op::Op;
use super::tensor::Tensor;
use super::text::{shown_node, shown_value};
use super::types::{Dim, Shape, TypeInfo};

/// A broken IR invariant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A node breaks an invariant.
    #[error("graph {graph:?}: node {node}: {message}")]
    Node {
        /// The graph's name.
        graph: String,
        /// The node: id, name, op and first output.
        node: String,
        /// The broken rule.
        message: String,
    },
    /// The graph's node list or signature is broken.
    #[error("graph {graph:?}: {message}")]
    Graph {
        /// The graph's name.
        graph: String,
        /// The broken rule.
        message: String,
    },
    /// A subgraph of a node fails verification.
    #[error("graph {graph:?}: node {node}, attribute '{attr}': {inner}")]
    Subgraph {
        /// The outer graph's name.
        graph: String,
        /// The node holding the subgraph.
        node: String,
        /// The attribute holding the subgraph.
        attr: &'static str,
        /// What is wrong inside.
        inner: Box<VerifyError>,
    },
}

/// Checks every invariant listed in the module docs.
pub fn verify(g: &Graph) -> Result<(), VerifyError> {
    Verifier { g }.run()
}

/// Checks that an input's default tensor fits the input's declared type: same dtype, and
/// the same rank and known dims unless the type is unranked.
pub(crate) fn check_default(ty: &TypeInfo, t: &Tensor) -> Result<(), String> {
    let fits = t.dtype() == ty.dtype
        && match &ty.shape {
            Shape::Unranked => true,
            Shape::Ranked(dims) => {
                dims.len() == t.shape().len()
                    && dims
                        .iter()
                        .zip(t.shape())
                        .all(|(d, &n)| !matches!(d, Dim::Known(k) if *k != n))
            }
        };
    if fits {
        Ok(())
    } else {
        let found = TypeInfo {
            dtype: t.dtype(),
            shape: Shape::known(t.shape()),
        };
        Err(format!(
            "default of type {found} does not fit the input type {ty}"
        ))
    }
}

/// The subgraphs an op holds, with their attribute names.
fn subgraphs(op: &Op) -> Vec<(&'static str, &Graph)> {
    match op {
        Op::If {
            then_branch,
            else_branch,
        } => {
            vec![("then_branch", then_branch), ("else_branch", else_branch)]
        }
        Op::Loop { body, .. } | Op::Scan { body, .. } => vec![("body", body)],
        _ => vec![],
    }
}

struct Verifier<'g> {
    g: &'g Graph,
}

impl Verifier<'_> {
    fn graph_err(&self, message: String) -> VerifyError {
        VerifyError::Graph {
            graph: self.g.name.clone(),
            message,
        }
    }

    fn node_err(&self, id: NodeId, message: String) -> VerifyError {
        VerifyError::Node {
            graph: self.g.name.clone(),
            node: self.describe(id),
            message,
        }
    }

    /// `n3 @conv_1 (conv -> %y)`.
    fn describe(&self, id: NodeId) -> String {
        let mut s = format!("n{}", id.index());
        if !self.g.contains(id) {
            return s;
        }
        let node = self.g.node(id);
        if !node.name.is_empty() {
            s += &format!(" {}", shown_node(&node.name));
        }
        s += &format!(" ({}", node.op.name());
        if let Some(v) = node.outputs.first() {
            s += &format!(" -> {}", shown_value(&v.name));
        }
        s + ")"
    }

    /// Whether `v` names an existing output.
    fn valid(&self, v: ValueRef) -> bool {
        self.g.contains(v.node) && (v.port as usize) < self.g.node(v.node).outputs.len()
    }

    fn run(&self) -> Result<(), VerifyError> {
        let g = self.g;
        // The order lists every live node once.
        let mut position = HashMap::new();
        for (i, &id) in g.node_ids().iter().enumerate() {
            if !g.contains(id) {
                return Err(self.graph_err(format!(
                    "the node order lists n{}, which is not in the graph",
                    id.index()
                )));
            }
            if position.insert(id, i).is_some() {
                return Err(
                    self.graph_err(format!("the node order lists {} twice", self.describe(id)))
                );
            }
        }
        if g.petgraph().node_count() != position.len() {
            let missing = g
                .petgraph()
                .node_indices()
                .find(|id| !position.contains_key(id));
            let missing = missing.map(|id| self.describe(id)).unwrap_or_default();
            return Err(self.graph_err(format!("node {missing} is missing from the node order")));
        }

        // Inputs: exactly the input nodes, first, in signature order.
        for (k, &id) in g.inputs.iter().enumerate() {
            if !g.contains(id) || !matches!(g.node(id).op, Op::Input { .. }) {
                return Err(self.graph_err(format!(
                    "graph input {k} is {}, not an input node",
                    self.describe(id)
                )));
            }
            if g.node_ids().get(k) != Some(&id) {
                return Err(self.node_err(
                    id,
                    format!("graph input {k} is not node {k} of the order (input nodes come first, in signature order)"),
                ));
            }
        }

        let mut names: HashMap<&str, NodeId> = HashMap::new();
        let signature: HashSet<_> = g.inputs.iter().collect();
        for (i, (id, node)) in g.nodes().enumerate() {
            let err = |m: String| self.node_err(id, m);
            for (slot, v) in node.inputs.iter().enumerate() {
                let Some(v) = v else { continue };
                if !g.contains(v.node) {
                    return Err(err(format!(
                        "input {slot} refers to n{}, which was removed",
                        v.node.index()
                    )));
                }
                if !self.valid(*v) {
                    let n = g.node(v.node).outputs.len();
                    return Err(err(format!(
                        "input {slot} refers to port {} of {}, which has {n} outputs",
                        v.port,
                        self.describe(v.node)
                    )));
                }
                if position[&v.node] >= i {
                    return Err(err(format!(
                        "input {slot} uses {}, which does not come earlier in the order",
                        self.describe(v.node)
                    )));
                }
                if g.value(*v).name.is_empty() {
                    return Err(err(format!("input {slot} uses an unnamed value")));
                }
            }

            // Edges mirror the present inputs.
            let mut edges: Vec<(usize, u32, u32)> = g
                .petgraph()
                .edges_directed(id, Direction::Incoming)
                .map(|e| (e.source().index(), e.weight().port, e.weight().slot))
                .collect();
            let mut expected: Vec<(usize, u32, u32)> = node
                .inputs
                .iter()
                .enumerate()
                .filter_map(|(slot, v)| v.map(|v| (v.node.index(), v.port, slot as u32)))
                .collect();
            edges.sort_unstable();
            expected.sort_unstable();
            if edges != expected {
                let show = |l: &[(usize, u32, u32)]| {
                    let items: Vec<String> =
                        l.iter().map(|(n, p, s)| format!("n{n}:{p}->{s}")).collect();
                    format!("[{}]", items.join(", "))
                };
                return Err(err(format!(
                    "incoming edges {} disagree with the inputs {} (as node:port->slot)",
                    show(&edges),
                    show(&expected)
                )));
            }

            for v in &node.outputs {
                if v.name.is_empty() {
                    continue;
                }
                if let Some(&first) = names.get(v.name.as_str()) {
                    return Err(err(format!(
                        "value name {} is already defined by {}",
                        shown_value(&v.name),
                        self.describe(first)
                    )));
                }
                names.insert(&v.name, id);
            }

            match &node.op {
                Op::Input { default } => {
                    if !signature.contains(&id) {
                        return Err(err("input node is not one of the graph's inputs".into()));
                    }
                    if !node.inputs.is_empty() || node.outputs.len() != 1 {
                        return Err(err(format!(
                            "an input node has no inputs and one output, not {} and {}",
                            node.inputs.len(),
                            node.outputs.len()
                        )));
                    }
                    if let Some(t) = default {
                        check_default(&node.outputs[0].ty, t).map_err(err)?;
                    }
                }
                Op::Constant { value } => {
                    let want = TypeInfo {
                        dtype: value.dtype(),
                        shape: Shape::known(value.shape()),
                    };
                    match node.outputs.as_slice() {
                        [v] if v.ty == want => {}
                        [v] => {
                            return Err(err(format!(
                                "constant of type {want} defines a value of type {}",
                                v.ty
                            )))
                        }
                        outs => {
                            return Err(err(format!(
                                "a constant defines one value, not {}",
                                outs.len()
                            )))
                        }
                    }
                }
                _ => {}
            }

            for (attr, sub) in subgraphs(&node.op) {
                verify(sub).map_err(|inner| VerifyError::Subgraph {
                    graph: g.name.clone(),
                    node: self.describe(id),
                    attr,
                    inner: Box::new(inner),
                })?;
            }
        }

        for (k, o) in g.outputs.iter().enumerate() {
            if !self.valid(o.value) {
                return Err(self.graph_err(format!(
                    "output {k} ({:?}) refers to port {} of n{}, which does not exist",
                    o.name,
                    o.value.port,
                    o.value.node.index()
                )));
            }
            if g.value(o.value).name.is_empty() {
                return Err(
                    self.graph_err(format!("output {k} ({:?}) is an unnamed value", o.name))
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::graph::{GraphOutput, Node, ValueInfo};
    use crate::ir::text::parse;
    use crate::ir::types::DType;

    const TEXT: &str = r#"graph "g" (%x: f32[2], %d: f32[2] = f32[2] [1.0, 2.0]) {
  %a: f32[2] = neg (%x) @neg_1
  %b: f32[2] = add (%a, %d)
  %k: i64[1] = constant {value: i64[1] [7]}
  return %b
}
"#;

    /// The parsed graph and its node ids in order: x, d, a, b, k.
    fn graph() -> (Graph, Vec<NodeId>) {
        let g = parse(TEXT).unwrap();
        let ids = g.node_ids().to_vec();
        (g, ids)
    }

    fn err(g: &Graph) -> String {
        verify(g).unwrap_err().to_string()
    }

    fn v(node: NodeId, port: u32) -> ValueRef {
        ValueRef { node, port }
    }

    #[test]
    fn accepts_valid_graphs() {
        verify(&graph().0).unwrap();
        verify(&Graph::new("empty")).unwrap();
    }

    #[test]
    fn edges_must_mirror_inputs() {
        let (mut g, ids) = graph();
        g.node_mut(ids[3]).inputs.push(Some(v(ids[0], 0)));
        assert_eq!(
            err(&g),
            r#"graph "g": node n3 (add -> %b): incoming edges [n1:0->1, n2:0->0] disagree with the inputs [n0:0->2, n1:0->1, n2:0->0] (as node:port->slot)"#
        );
    }

    #[test]
    fn inputs_must_be_live_valid_and_earlier() {
        let (mut g, ids) = graph();
        g.remove_node(ids[2]);
        assert_eq!(
            err(&g),
            r#"graph "g": node n3 (add -> %b): input 0 refers to n2, which was removed"#
        );

        let (mut g, ids) = graph();
        g.set_input(ids[3], 1, Some(v(ids[2], 3)));
        assert_eq!(
            err(&g),
            r#"graph "g": node n3 (add -> %b): input 1 refers to port 3 of n2 @neg_1 (neg -> %a), which has 1 outputs"#
        );

        let (mut g, ids) = graph();
        g.set_input(ids[2], 0, Some(v(ids[3], 0)));
        assert_eq!(
            err(&g),
            r#"graph "g": node n2 @neg_1 (neg -> %a): input 0 uses n3 (add -> %b), which does not come earlier in the order"#
        );
        let (mut g, ids) = graph();
        g.set_input(ids[2], 0, Some(v(ids[2], 0)));
        assert!(err(&g).ends_with(
            "input 0 uses n2 @neg_1 (neg -> %a), which does not come earlier in the order"
        ));
    }

    #[test]
    fn graph_inputs_are_the_leading_input_nodes() {
        let (mut g, ids) = graph();
        g.inputs.push(ids[2]);
        assert_eq!(
            err(&g),
            r#"graph "g": graph input 2 is n2 @neg_1 (neg -> %a), not an input node"#
        );

        // `add_input` keeps inputs first in the order, so a late input verifies.
        let (mut g, _) = graph();
        g.add_input(
            "late",
            TypeInfo {
                dtype: DType::F32,
                shape: Shape::Unranked,
            },
        );
        verify(&g).unwrap();

        let (mut g, _) = graph();
        g.inputs.swap(0, 1);
        assert!(
            err(&g).contains("graph input 0 is not node 0 of the order"),
            "{}",
            err(&g)
        );

        let (mut g, _) = graph();
        g.inputs.pop();
        assert_eq!(
            err(&g),
            r#"graph "g": node n1 (input -> %d): input node is not one of the graph's inputs"#
        );

        let (mut g, ids) = graph();
        g.node_mut(ids[1]).outputs.push(ValueInfo {
            name: "e".into(),
            ty: TypeInfo {
                dtype: DType::F32,
                shape: Shape::Unranked,
            },
        });
        assert_eq!(
            err(&g),
            r#"graph "g": node n1 (input -> %d): an input node has no inputs and one output, not 0 and 2"#
        );

        let (mut g, ids) = graph();
        g.node_mut(ids[1]).outputs[0].ty.shape = Shape::known(&[3]);
        assert_eq!(
            err(&g),
            r#"graph "g": node n1 (input -> %d): default of type f32[2] does not fit the input type f32[3]"#
        );
        g.node_mut(ids[1]).outputs[0].ty.shape = Shape::Ranked(vec![Dim::Sym("N".into())]);
        verify(&g).unwrap();
    }

    #[test]
    fn outputs_must_exist_and_be_named() {
        let (mut g, ids) = graph();
        g.outputs.push(GraphOutput {
            name: "o".into(),
            value: v(ids[4], 1),
        });
        assert_eq!(
            err(&g),
            r#"graph "g": output 1 ("o") refers to port 1 of n4, which does not exist"#
        );

        let (mut g, ids) = graph();
        g.node_mut(ids[3]).outputs[0].name = String::new();
        assert_eq!(err(&g), r#"graph "g": output 0 ("b") is an unnamed value"#);

        let (mut g, ids) = graph();
        g.node_mut(ids[2]).outputs[0].name = String::new();
        assert_eq!(
            err(&g),
            r#"graph "g": node n3 (add -> %b): input 0 uses an unnamed value"#
        );
    }

    #[test]
    fn value_names_are_unique() {
        let (mut g, ids) = graph();
        g.node_mut(ids[4]).outputs[0].name = "a".into();
        assert_eq!(
            err(&g),
            r#"graph "g": node n4 (constant -> %a): value name %a is already defined by n2 @neg_1 (neg -> %a)"#
        );
        // Unnamed values may repeat.
        let (mut g, ids) = graph();
        g.add_node(Node {
            name: String::new(),
            op: Op::Split {
                axis: 0,
                num_outputs: None,
            },
            inputs: vec![Some(v(ids[0], 0))],
            outputs: vec![
                ValueInfo {
                    name: String::new(),
                    ty: TypeInfo {
                        dtype: DType::F32,
                        shape: Shape::Unranked,
                    },
                },
                ValueInfo {
                    name: String::new(),
                    ty: TypeInfo {
                        dtype: DType::F32,
                        shape: Shape::Unranked,
                    },
                },
            ],
        });
        verify(&g).unwrap();
    }

    #[test]
    fn constants_match_their_type() {
        let (mut g, ids) = graph();
        g.node_mut(ids[4]).outputs[0].ty = TypeInfo {
            dtype: DType::I32,
            shape: Shape::known(&[1]),
        };
        assert_eq!(
            err(&g),
            r#"graph "g": node n4 (constant -> %k): constant of type i64[1] defines a value of type i32[1]"#
        );
        g.node_mut(ids[4]).outputs.clear();
        assert_eq!(
            err(&g),
            r#"graph "g": node n4 (constant): a constant defines one value, not 0"#
        );
    }

    #[test]
    fn subgraphs_are_verified() {
        let mut g = parse(
            r#"graph "main" (%c: bool[], %x: f32[2]) {
  %y: f32[2] = if {
    then_branch: graph "then" (%x: f32[2]) {
      return %x
    },
    else_branch: graph "else" (%x: f32[2]) {
      %z: f32[2] = neg (%x)
      return %z
    }
  } (%c, %x) @branch
  return %y
}
"#,
        )
        .unwrap();
        verify(&g).unwrap();
        let id = g.node_ids()[2];
        let Op::If { else_branch, .. } = &mut g.node_mut(id).op else {
            panic!()
        };
        let neg = else_branch.node_ids()[1];
        else_branch.node_mut(neg).outputs[0].name = "x".into();
        assert_eq!(
            err(&g),
            r#"graph "main": node n2 @branch (if -> %y), attribute 'else_branch': graph "else": node n1 (neg -> %x): value name %x is already defined by n0 (input -> %x)"#
        );
    }
}
