//! The dataflow graph: nodes on a petgraph `StableDiGraph`, values as (node, output port).
//!
//! Each [`Node`] owns its op, its ordered (possibly absent) inputs and the name and type of
//! each of its outputs. Graph inputs are `Op::Input` nodes and constants are `Op::Constant`
//! nodes, so every value has exactly one producer. Petgraph edges mirror the inputs (one
//! edge per present input slot); they are kept in sync by the methods here and checked by
//! the verifier. Nodes are kept in insertion order, which the importer and the parser make
//! topological.

use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use super::attr::Attr;
use super::op::Op;
use super::types::{DType, Shape, TypeInfo};

/// Index of a node.
pub type NodeId = NodeIndex<u32>;

/// A value: output `port` of `node`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueRef {
    /// The producing node.
    pub node: NodeId,
    /// Which of its outputs.
    pub port: u32,
}

/// Name and type of one node output.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueInfo {
    /// The value's name (ONNX value names are kept).
    pub name: String,
    /// Element type and shape.
    pub ty: TypeInfo,
}

/// One operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The node's name (may be empty).
    pub name: String,
    /// What it computes.
    pub op: Op,
    /// Positional inputs; `None` is an absent optional input.
    pub inputs: Vec<Option<ValueRef>>,
    /// One entry per output.
    pub outputs: Vec<ValueInfo>,
}

impl Node {
    /// The node's name for messages: its name, or its first output's when it has none.
    pub fn display_name(&self) -> String {
        if !self.name.is_empty() {
            return self.name.clone();
        }
        match self.outputs.first() {
            Some(o) => format!("<unnamed, output '{}'>", o.name),
            None => "<unnamed>".to_string(),
        }
    }
}

/// A graph output: a value and the name it is exported under.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphOutput {
    /// Exported name.
    pub name: String,
    /// The value.
    pub value: ValueRef,
}

/// Edge weight: which output port feeds which input slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    /// Output port of the source.
    pub port: u32,
    /// Input slot of the target.
    pub slot: u32,
}

/// A dataflow graph.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// The graph's name.
    pub name: String,
    g: StableDiGraph<Node, Edge, u32>,
    /// Node order (insertion order, topological once built by the importer or parser).
    order: Vec<NodeId>,
    /// The `Op::Input` nodes in signature order.
    pub inputs: Vec<NodeId>,
    /// Outputs in signature order.
    pub outputs: Vec<GraphOutput>,
}

impl Graph {
    /// An empty graph.
    pub fn new(name: impl Into<String>) -> Graph {
        Graph {
            name: name.into(),
            ..Graph::default()
        }
    }

    /// Adds a node; its inputs must already exist. Returns its id.
    pub fn add_node(&mut self, node: Node) -> NodeId {
        let inputs = node.inputs.clone();
        let id = self.g.add_node(node);
        for (slot, inp) in inputs.iter().enumerate() {
            if let Some(v) = inp {
                self.g.add_edge(
                    v.node,
                    id,
                    Edge {
                        port: v.port,
                        slot: slot as u32,
                    },
                );
            }
        }
        self.order.push(id);
        id
    }

    /// Adds a graph input node with the given name and type, after the existing inputs in
    /// the node order (inputs come first).
    pub fn add_input(&mut self, name: impl Into<String>, ty: TypeInfo) -> NodeId {
        let id = self.g.add_node(Node {
            name: String::new(),
            op: Op::Input { default: None },
            inputs: vec![],
            outputs: vec![ValueInfo {
                name: name.into(),
                ty,
            }],
        });
        let at = self
            .order
            .iter()
            .take_while(|n| matches!(self.g[**n].op, Op::Input { .. }))
            .count();
        self.order.insert(at, id);
        self.inputs.push(id);
        id
    }

    /// Replaces input `slot` of `node` by `value` (or removes it with `None`).
    pub fn set_input(&mut self, node: NodeId, slot: usize, value: Option<ValueRef>) {
        let old: Vec<_> = self
            .g
            .edges_directed(node, Direction::Incoming)
            .filter(|e| e.weight().slot as usize == slot)
            .map(|e| e.id())
            .collect();
        for e in old {
            self.g.remove_edge(e);
        }
        let n = &mut self.g[node];
        if n.inputs.len() <= slot {
            n.inputs.resize(slot + 1, None);
        }
        n.inputs[slot] = value;
        if let Some(v) = value {
            self.g.add_edge(
                v.node,
                node,
                Edge {
                    port: v.port,
                    slot: slot as u32,
                },
            );
        }
    }

    /// Moves every reader of output `port` of `id` (nodes and graph outputs) to `to`.
    pub fn redirect(&mut self, id: NodeId, port: u32, to: ValueRef) {
        for (consumer, slot, p) in self.consumers(id) {
            if p == port {
                self.set_input(consumer, slot as usize, Some(to));
            }
        }
        for o in &mut self.outputs {
            if o.value == (ValueRef { node: id, port }) {
                o.value = to;
            }
        }
    }

    /// Removes the nodes nothing reads (neither a node nor a graph output), graph inputs
    /// excepted, until none is left.
    pub fn remove_dead_nodes(&mut self) {
        let outputs: std::collections::HashSet<NodeId> =
            self.outputs.iter().map(|o| o.value.node).collect();
        // In a topological order one backward sweep removes whole chains.
        loop {
            let mut removed = false;
            for id in self.order.clone().into_iter().rev() {
                if !matches!(self.g[id].op, Op::Input { .. })
                    && !outputs.contains(&id)
                    && self.consumers(id).is_empty()
                {
                    for slot in 0..self.g[id].inputs.len() {
                        self.set_input(id, slot, None);
                    }
                    self.remove_node(id);
                    removed = true;
                }
            }
            if !removed {
                break;
            }
        }
    }

    /// Removes a node. Its consumers must have been rewired first.
    pub fn remove_node(&mut self, id: NodeId) -> Option<Node> {
        self.order.retain(|n| *n != id);
        self.inputs.retain(|n| *n != id);
        self.g.remove_node(id)
    }

    /// The node.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.g[id]
    }

    /// The node, mutably. Changing `inputs` directly desynchronises edges: use
    /// [`Graph::set_input`].
    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.g[id]
    }

    /// Whether the id names a live node.
    pub fn contains(&self, id: NodeId) -> bool {
        self.g.contains_node(id)
    }

    /// Node ids in order.
    pub fn node_ids(&self) -> &[NodeId] {
        &self.order
    }

    /// Nodes in order.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.order.iter().map(move |&id| (id, &self.g[id]))
    }

    /// Number of nodes (including inputs and constants).
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Name and type of a value.
    pub fn value(&self, v: ValueRef) -> &ValueInfo {
        &self.g[v.node].outputs[v.port as usize]
    }

    /// Type of a value.
    pub fn ty(&self, v: ValueRef) -> &TypeInfo {
        &self.value(v).ty
    }

    /// Element type of a value.
    pub fn dtype(&self, v: ValueRef) -> DType {
        self.ty(v).dtype
    }

    /// Shape of a value.
    pub fn shape(&self, v: ValueRef) -> &Shape {
        &self.ty(v).shape
    }

    /// The consumers of a value's node: (consumer, input slot, output port).
    pub fn consumers(&self, id: NodeId) -> Vec<(NodeId, u32, u32)> {
        self.g
            .edges_directed(id, Direction::Outgoing)
            .map(|e| (e.target(), e.weight().slot, e.weight().port))
            .collect()
    }

    /// The underlying petgraph graph (read-only).
    pub fn petgraph(&self) -> &StableDiGraph<Node, Edge, u32> {
        &self.g
    }

    /// Reorders nodes topologically (stable: keeps the current order where it is valid).
    /// Errors with the name of a node on a cycle.
    pub fn toposort(&mut self) -> Result<(), String> {
        let pos: std::collections::HashMap<NodeId, usize> = self
            .order
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, i))
            .collect();
        let mut indeg: std::collections::HashMap<NodeId, usize> = self
            .order
            .iter()
            .map(|&n| (n, self.g[n].inputs.iter().flatten().count()))
            .collect();
        let mut ready: std::collections::BTreeSet<(usize, NodeId)> = indeg
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(n, _)| (pos[n], *n))
            .collect();
        let mut out = Vec::with_capacity(self.order.len());
        while let Some(first) = ready.iter().next().copied() {
            ready.remove(&first);
            let n = first.1;
            out.push(n);
            for e in self.g.edges_directed(n, Direction::Outgoing) {
                let t = e.target();
                let d = indeg.get_mut(&t).expect("edge target is a live node");
                *d -= 1;
                if *d == 0 {
                    ready.insert((pos[&t], t));
                }
            }
        }
        if out.len() != self.order.len() {
            let stuck = self
                .order
                .iter()
                .find(|n| indeg[n] > 0)
                .map(|n| {
                    let node = &self.g[*n];
                    format!("node '{}' ({})", node.name, node.op.onnx_name())
                })
                .unwrap_or_default();
            return Err(format!("the graph has a cycle through {stuck}"));
        }
        self.order = out;
        Ok(())
    }

    /// Structural equality: same signature, and nodes pairwise equal in order, with value
    /// references compared by position in the order (so node ids may differ).
    pub fn same_as(&self, other: &Graph) -> bool {
        if self.name != other.name || self.order.len() != other.order.len() {
            return false;
        }
        let pa: std::collections::HashMap<NodeId, usize> = self
            .order
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, i))
            .collect();
        let pb: std::collections::HashMap<NodeId, usize> = other
            .order
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, i))
            .collect();
        let map_a = |v: &ValueRef| (pa.get(&v.node).copied(), v.port);
        let map_b = |v: &ValueRef| (pb.get(&v.node).copied(), v.port);
        let ins_a: Vec<_> = self.inputs.iter().map(|n| pa.get(n)).collect();
        let ins_b: Vec<_> = other.inputs.iter().map(|n| pb.get(n)).collect();
        if ins_a != ins_b || self.outputs.len() != other.outputs.len() {
            return false;
        }
        for (a, b) in self.outputs.iter().zip(&other.outputs) {
            if a.name != b.name || map_a(&a.value) != map_b(&b.value) {
                return false;
            }
        }
        for (&ia, &ib) in self.order.iter().zip(&other.order) {
            let (a, b) = (&self.g[ia], &other.g[ib]);
            if a.name != b.name || a.outputs != b.outputs || a.inputs.len() != b.inputs.len() {
                return false;
            }
            if !ops_same(&a.op, &b.op) {
                return false;
            }
            for (x, y) in a.inputs.iter().zip(&b.inputs) {
                if x.as_ref().map(map_a) != y.as_ref().map(map_b) {
                    return false;
                }
            }
        }
        true
    }
}

/// Op equality where subgraphs compare with [`Graph::same_as`].
fn ops_same(a: &Op, b: &Op) -> bool {
    let (aa, ba) = (a.attrs(), b.attrs());
    if a.name() != b.name() || aa.len() != ba.len() {
        return false;
    }
    aa.iter().zip(&ba).all(|((na, va), (nb, vb))| {
        na == nb
            && match (va, vb) {
                (Attr::Graph(x), Attr::Graph(y)) => x.same_as(y),
                // Floats compare by bits, so NaN equals itself and -0.0 differs from 0.0.
                (Attr::Float(x), Attr::Float(y)) => x.to_bits() == y.to_bits(),
                (Attr::Floats(x), Attr::Floats(y)) => {
                    x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
                }
                _ => va == vb,
            }
    })
}

impl PartialEq for Graph {
    fn eq(&self, other: &Graph) -> bool {
        self.same_as(other)
    }
}
