//! The e-graph language: an [`ENode`] wraps the IR's [`Op`] and its children, so the op list
//! exists once (in `ir::op`).
//!
//! Ops hold `f32` fields, tensors and subgraphs, so `Op` is not `Eq + Hash + Ord`. A
//! [`KeyedOp`] pairs an op with a canonical key computed once: the op name, its output count
//! and its non-default attributes, floats by bits, tensors by dtype, shape and
//! [`Tensor::digest`], subgraphs by a hash of their full text. Equality also compares tensors
//! and subgraphs in full, so a digest collision cannot merge different constants. (On such a
//! collision `Ord` falls back to pointer order, which is consistent for the life of the
//! e-graph; it never happens in practice.)
//!
//! Graph structure the `Op` enum does not express:
//! - `input.i`: graph input `i` (a leaf),
//! - `_`: an absent optional input (a leaf),
//! - `get.i`: output `i` of a multi-output node. A node with other than one output makes an
//!   e-class that stands for the tuple of its outputs; only `get` nodes read it.
//!
//! In patterns an op matches by name, arity and output count only: attributes are checked by
//! rule conditions and set by custom appliers. An op written on a right-hand side gets its
//! default attributes; an op with a required attribute (`concat`, `cast`) parses to a
//! [`Head::Pattern`] that may only appear on a left-hand side (instantiated, it has no type,
//! and extraction never picks it).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use egg::{Id, Language};

use crate::ir::{Attr, Attrs, Op};

/// An op with its output count and canonical key (see the module docs).
#[derive(Debug)]
pub struct KeyedOp {
    /// The op.
    pub op: Op,
    /// How many outputs the node has; other than 1 makes a tuple class.
    pub n_out: usize,
    key: String,
}

impl KeyedOp {
    /// Wraps an op, computing its key.
    pub fn new(op: Op, n_out: usize) -> Arc<KeyedOp> {
        let key = canonical_key(&op, n_out);
        Arc::new(KeyedOp { op, n_out, key })
    }

    /// A `constant` op holding `t`.
    pub fn constant(t: crate::ir::Tensor) -> Arc<KeyedOp> {
        KeyedOp::new(Op::Constant { value: t }, 1)
    }

    /// The tensor, when this is a `constant`.
    pub fn tensor(&self) -> Option<&crate::ir::Tensor> {
        match &self.op {
            Op::Constant { value } => Some(value),
            _ => None,
        }
    }

    /// Tensors and subgraphs compared in full (everything else is in the key).
    fn heavy_eq(&self, other: &KeyedOp) -> bool {
        match (&self.op, &other.op) {
            (Op::Constant { value: a }, Op::Constant { value: b }) => a == b,
            (Op::Input { default: a }, Op::Input { default: b }) => a == b,
            (a, b) if has_heavy_attrs(a) => {
                let (aa, ba) = (a.attrs(), b.attrs());
                aa.len() == ba.len()
                    && aa.iter().zip(&ba).all(|((_, x), (_, y))| match (x, y) {
                        (Attr::Tensor(x), Attr::Tensor(y)) => x == y,
                        (Attr::Graph(x), Attr::Graph(y)) => x.same_as(y),
                        _ => true,
                    })
            }
            _ => true,
        }
    }
}

/// Whether the op may carry a tensor or subgraph attribute besides `constant`/`input`.
fn has_heavy_attrs(op: &Op) -> bool {
    matches!(
        op,
        Op::ConstantOfShape { .. }
            | Op::If { .. }
            | Op::Loop { .. }
            | Op::Scan { .. }
            | Op::FusedElementwise { .. }
    )
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

fn canonical_key(op: &Op, n_out: usize) -> String {
    use std::fmt::Write;
    let mut k = format!("{}/{n_out}", op.name());
    let tensor_key =
        |t: &crate::ir::Tensor| format!("{}{:?}#{:016x}", t.dtype(), t.shape(), t.digest());
    match op {
        Op::Constant { value } => k.push_str(&tensor_key(value)),
        Op::Input { default } => {
            if let Some(t) = default {
                k.push_str(&tensor_key(t));
            }
        }
        _ => {
            for (name, a) in op.attrs() {
                let _ = write!(k, " {name}=");
                let _ = match a {
                    Attr::Float(f) => write!(k, "f{:08x}", f.to_bits()),
                    Attr::Floats(v) => {
                        write!(k, "{:?}", v.iter().map(|f| f.to_bits()).collect::<Vec<_>>())
                    }
                    Attr::Tensor(t) => write!(k, "{}", tensor_key(&t)),
                    Attr::Graph(g) => write!(
                        k,
                        "g{:016x}",
                        fnv(crate::ir::text::print_full(&g).as_bytes())
                    ),
                    other => write!(k, "{other:?}"),
                };
            }
        }
    }
    k
}

impl PartialEq for KeyedOp {
    fn eq(&self, other: &KeyedOp) -> bool {
        self.key == other.key && self.heavy_eq(other)
    }
}
impl Eq for KeyedOp {}
impl Hash for KeyedOp {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state)
    }
}
impl PartialOrd for KeyedOp {
    fn partial_cmp(&self, other: &KeyedOp) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for KeyedOp {
    fn cmp(&self, other: &KeyedOp) -> Ordering {
        self.key.cmp(&other.key).then_with(|| {
            if std::ptr::eq(self, other) || self.heavy_eq(other) {
                Ordering::Equal
            } else {
                (self as *const KeyedOp).cmp(&(other as *const KeyedOp))
            }
        })
    }
}

/// What an e-node computes (see the module docs).
#[derive(Clone, Debug)]
pub enum Head {
    /// Graph input `i`.
    Input(usize),
    /// An absent optional input.
    Absent,
    /// Output `i` of a tuple class.
    Get(usize),
    /// An IR op.
    Op(Arc<KeyedOp>),
    /// A pattern-only op: name and output count, no attributes (see the module docs).
    Pattern(&'static str, usize),
}

impl Head {
    fn rank(&self) -> u8 {
        match self {
            Head::Input(_) => 0,
            Head::Absent => 1,
            Head::Get(_) => 2,
            Head::Op(_) => 3,
            Head::Pattern(..) => 4,
        }
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Head) -> bool {
        match (self, other) {
            (Head::Input(a), Head::Input(b)) | (Head::Get(a), Head::Get(b)) => a == b,
            (Head::Absent, Head::Absent) => true,
            (Head::Op(a), Head::Op(b)) => Arc::ptr_eq(a, b) || a == b,
            (Head::Pattern(a, n), Head::Pattern(b, m)) => a == b && n == m,
            _ => false,
        }
    }
}
impl Eq for Head {}
impl Hash for Head {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.rank().hash(state);
        match self {
            Head::Input(i) | Head::Get(i) => i.hash(state),
            Head::Absent => {}
            Head::Op(k) => k.hash(state),
            Head::Pattern(a, n) => (a, n).hash(state),
        }
    }
}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Head) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Head) -> Ordering {
        match (self, other) {
            (Head::Input(a), Head::Input(b)) | (Head::Get(a), Head::Get(b)) => a.cmp(b),
            (Head::Op(a), Head::Op(b)) => a.cmp(b),
            (Head::Pattern(a, n), Head::Pattern(b, m)) => (a, n).cmp(&(b, m)),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// An e-node: a [`Head`] and its children (inputs in order; absent ones are `_` leaves, and
/// trailing absent inputs are dropped).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ENode {
    /// What the node computes.
    pub head: Head,
    /// Its inputs.
    pub children: Vec<Id>,
}

impl ENode {
    /// A leaf.
    pub fn leaf(head: Head) -> ENode {
        ENode {
            head,
            children: vec![],
        }
    }

    /// The op, for `Head::Op` nodes.
    pub fn op(&self) -> Option<&Op> {
        match &self.head {
            Head::Op(k) => Some(&k.op),
            _ => None,
        }
    }
}

/// The discriminant: what [`Language::matches`] compares besides the arity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Graph input `i`.
    Input(usize),
    /// Absent input.
    Absent,
    /// Projection `i`.
    Get(usize),
    /// An op by name and output count.
    Op(&'static str, usize),
}

impl Language for ENode {
    type Discriminant = Kind;

    fn discriminant(&self) -> Kind {
        match &self.head {
            Head::Input(i) => Kind::Input(*i),
            Head::Absent => Kind::Absent,
            Head::Get(i) => Kind::Get(*i),
            Head::Op(k) => Kind::Op(k.op.name(), k.n_out),
            Head::Pattern(name, n) => Kind::Op(name, *n),
        }
    }

    fn matches(&self, other: &ENode) -> bool {
        self.children.len() == other.children.len() && self.discriminant() == other.discriminant()
    }

    fn children(&self) -> &[Id] {
        &self.children
    }

    fn children_mut(&mut self) -> &mut [Id] {
        &mut self.children
    }
}

impl fmt::Display for ENode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.head {
            Head::Input(i) => write!(f, "input.{i}"),
            Head::Absent => f.write_str("_"),
            Head::Get(i) => write!(f, "get.{i}"),
            Head::Op(k) if k.n_out == 1 => f.write_str(k.op.name()),
            Head::Op(k) => write!(f, "{}/{}", k.op.name(), k.n_out),
            Head::Pattern(name, 1) => f.write_str(name),
            Head::Pattern(name, n) => write!(f, "{name}/{n}"),
        }
    }
}

impl egg::FromOp for ENode {
    type Error = String;

    /// Parses `input.i`, `_`, `get.i`, `name` or `name/n_out` (ops get default attributes).
    fn from_op(op: &str, children: Vec<Id>) -> Result<ENode, String> {
        let index = |s: &str| {
            s.parse::<usize>()
                .map_err(|_| format!("bad index in '{op}'"))
        };
        let head = if op == "_" {
            Head::Absent
        } else if let Some(i) = op.strip_prefix("input.") {
            Head::Input(index(i)?)
        } else if let Some(i) = op.strip_prefix("get.") {
            Head::Get(index(i)?)
        } else {
            let (name, n_out) = match op.split_once('/') {
                Some((n, k)) => (n, index(k)?),
                None => (op, 1),
            };
            let i = Op::TEXT_NAMES
                .iter()
                .position(|n| *n == name)
                .or_else(|| Op::ONNX_NAMES.iter().position(|n| *n == name))
                .ok_or_else(|| format!("unknown op '{op}'"))?;
            match Op::build(name, &mut Attrs::new()) {
                Ok(Some(built)) => Head::Op(KeyedOp::new(built, n_out)),
                _ => Head::Pattern(Op::TEXT_NAMES[i], n_out),
            }
        };
        Ok(ENode { head, children })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Tensor;
    use egg::FromOp;

    #[test]
    fn keys_compare_floats_by_bits_and_tensors_in_full() {
        let a = KeyedOp::new(Op::LeakyRelu { alpha: 0.0 }, 1);
        let b = KeyedOp::new(Op::LeakyRelu { alpha: -0.0 }, 1);
        assert_ne!(a, b);
        let n1 = KeyedOp::new(Op::LeakyRelu { alpha: f32::NAN }, 1);
        let n2 = KeyedOp::new(Op::LeakyRelu { alpha: f32::NAN }, 1);
        assert_eq!(n1, n2);
        let c1 = KeyedOp::constant(Tensor::from_vec(&[2], vec![1.0f32, 2.0]).unwrap());
        let c2 = KeyedOp::constant(Tensor::from_vec(&[2], vec![1.0f32, 2.0]).unwrap());
        let c3 = KeyedOp::constant(Tensor::from_vec(&[2, 1], vec![1.0f32, 2.0]).unwrap());
        assert_eq!(c1, c2);
        assert_eq!(c1.cmp(&c2), Ordering::Equal);
        assert_ne!(c1, c3);
        // Output count is part of the identity.
        assert_ne!(
            KeyedOp::new(Op::Dropout { seed: None }, 1),
            KeyedOp::new(Op::Dropout { seed: None }, 2)
        );
    }

    #[test]
    fn from_op_parses_what_display_prints() {
        for s in ["input.3", "_", "get.1", "relu", "dropout/2"] {
            let n = ENode::from_op(s, vec![]).unwrap();
            assert_eq!(n.to_string(), s);
        }
        assert!(ENode::from_op("no_such_op", vec![]).is_err());
        // Concat's axis is required: it parses to a pattern-only head.
        let c = ENode::from_op("concat", vec![]).unwrap();
        assert!(matches!(c.head, Head::Pattern("concat", 1)));
        assert_eq!(c.to_string(), "concat");
        let real = ENode::leaf(Head::Op(KeyedOp::new(Op::Concat { axis: 1 }, 1)));
        assert!(c.matches(&real));
    }
}
