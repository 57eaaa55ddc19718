//! Resource limits on untrusted models, checked before the work they bound is done.
//!
//! A model file comes from anywhere; [`Limits`] bounds what reading one may cost: the file's
//! size (checked from its metadata before it is read), the elements and rank of every
//! tensor and declared or inferred value (checked before anything is allocated), the number
//! of graph nodes (checked before the graph is built, and again as model-local functions are
//! inlined), and how deeply subgraphs and function calls nest. Every error names the limit
//! and the command-line flag that raises it (`src/cli/limits.rs`).
//!
//! The protobuf recursion depth is not here: prost fixes it at
//! [`PROTOBUF_RECURSION_LIMIT`] nested messages (it can only be switched off, by a cargo
//! feature, never configured), so a deeper model fails to decode with prost's
//! "recursion limit reached". One subgraph level is three messages deep (graph, node,
//! attribute), so prost's limit is above the default [`Limits::depth`] and never the
//! binding one for subgraphs.
//!
//! This module owns the numbers and the messages; the importer (`onnx::import`) decides
//! where to check them, and the evaluator's own per-tensor cap
//! (`graphc_passes::eval::util::MAX_ELEMENTS`) stays an upper bound on
//! [`Limits::elements`].

use graphc_passes::eval::util::MAX_ELEMENTS;

/// How many nested messages prost decodes before failing ("recursion limit reached"). A
/// constant of prost 0.14, not configurable.
pub const PROTOBUF_RECURSION_LIMIT: usize = 100;

/// Resource limits for reading, typing and evaluating a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest model file, in bytes (`--max-model-bytes`).
    pub model_bytes: u64,
    /// Most elements of one tensor or value with known dims (`--max-elements`); at most
    /// `MAX_ELEMENTS`.
    pub elements: usize,
    /// Highest rank of a tensor or value (`--max-rank`).
    pub rank: usize,
    /// Most nodes in the model, subgraphs and inlined functions included (`--max-nodes`).
    pub nodes: usize,
    /// Deepest nesting of subgraphs and model-local function calls (`--max-depth`).
    pub depth: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            model_bytes: 4 << 30,
            elements: MAX_ELEMENTS,
            rank: 16,
            nodes: 1_000_000,
            depth: 32,
        }
    }
}

impl Limits {
    /// Checks a model file's size (before reading it).
    pub fn check_model_bytes(&self, bytes: u64) -> Result<(), String> {
        if bytes > self.model_bytes {
            return Err(format!(
                "the file has {bytes} bytes, over the limit of {} (--max-model-bytes)",
                self.model_bytes
            ));
        }
        Ok(())
    }

    /// Checks a node count.
    pub fn check_nodes(&self, nodes: usize) -> Result<(), String> {
        if nodes > self.nodes {
            return Err(format!(
                "model has {nodes} nodes, over the limit of {} (--max-nodes)",
                self.nodes
            ));
        }
        Ok(())
    }

    /// Checks a nesting depth (the top graph is depth 0).
    pub fn check_depth(&self, depth: usize) -> Result<(), String> {
        if depth > self.depth {
            return Err(format!(
                "subgraphs and function calls nest {depth} deep, over the limit of {} (--max-depth)",
                self.depth
            ));
        }
        Ok(())
    }

    /// Checks a rank.
    pub fn check_rank(&self, rank: usize) -> Result<(), String> {
        if rank > self.rank {
            return Err(format!(
                "rank {rank} is over the limit of {} (--max-rank)",
                self.rank
            ));
        }
        Ok(())
    }

    /// Checks an element count of `dims` (what a shape would allocate), with checked
    /// arithmetic: a product that overflows is over the limit too.
    pub fn check_elements(&self, dims: &[usize]) -> Result<(), String> {
        let limit = self.elements.min(MAX_ELEMENTS);
        match dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)) {
            Some(n) if n <= limit => Ok(()),
            Some(n) => Err(format!(
                "shape {dims:?} has {n} elements, over the limit of {limit} (--max-elements)"
            )),
            None => Err(format!(
                "shape {dims:?} has more than {} elements, over the limit of {limit} (--max-elements)",
                usize::MAX
            )),
        }
    }

    /// Checks the rank and element count of a shape.
    pub fn check_shape(&self, dims: &[usize]) -> Result<(), String> {
        self.check_rank(dims.len())?;
        self.check_elements(dims)
    }

    /// Checks a `TensorProto`'s declared dims (rank, sign and element count) before
    /// anything is decoded or allocated.
    pub fn check_proto_dims(&self, dims: &[i64]) -> Result<(), String> {
        self.check_rank(dims.len())?;
        let mut shape = Vec::with_capacity(dims.len());
        for &d in dims {
            let d = usize::try_from(d)
                .map_err(|_| format!("tensor has a negative dimension {d} in {dims:?}"))?;
            shape.push(d);
        }
        self.check_elements(&shape)
    }

    /// Checks a type's rank and, when all its dims are known, its element count.
    pub fn check_type(&self, ty: &graphc_passes::ir::TypeInfo) -> Result<(), String> {
        use graphc_passes::ir::{Dim, Shape};
        let Shape::Ranked(dims) = &ty.shape else {
            return Ok(());
        };
        self.check_rank(dims.len())?;
        let known: Vec<usize> = dims
            .iter()
            .filter_map(|d| match d {
                Dim::Known(n) => Some(*n),
                _ => None,
            })
            .collect();
        // Only a fully known shape has a known size (an unknown dim may be 0).
        if known.len() == dims.len() {
            self.check_elements(&known)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_limit_and_the_flag() {
        let l = Limits::default();
        assert_eq!(
            l.check_nodes(2_000_000).unwrap_err(),
            "model has 2000000 nodes, over the limit of 1000000 (--max-nodes)"
        );
        assert_eq!(
            l.check_rank(17).unwrap_err(),
            "rank 17 is over the limit of 16 (--max-rank)"
        );
        assert!(l
            .check_elements(&[1 << 40, 1 << 40])
            .unwrap_err()
            .ends_with("(--max-elements)"));
        assert_eq!(
            l.check_elements(&[1_000_000, 1_000_000]).unwrap_err(),
            "shape [1000000, 1000000] has 1000000000000 elements, over the limit of 2147483648 (--max-elements)"
        );
        assert!(l.check_elements(&[0, usize::MAX]).is_ok());
        assert!(l.check_depth(33).unwrap_err().contains("(--max-depth)"));
        assert!(l
            .check_model_bytes(5 << 30)
            .unwrap_err()
            .contains("(--max-model-bytes)"));
        assert!(l.check_proto_dims(&[2, -1]).is_err());
    }

    /// prost's recursion limit is what this module says it is: 100 nested messages decode,
    /// 101 do not. (A `TypeProto` sequence of sequences nests one message per level plus one
    /// for the value oneof's message.)
    #[test]
    fn prost_recursion_limit_is_fixed_at_100() {
        use onnx_proto::prost::Message;
        use onnx_proto::{type_proto, TypeProto};
        // Each level is TypeProto -> Sequence -> TypeProto: two messages.
        fn nested(levels: usize) -> TypeProto {
            let mut t = TypeProto::default();
            for _ in 0..levels {
                t = TypeProto {
                    value: Some(type_proto::Value::SequenceType(Box::new(
                        type_proto::Sequence {
                            elem_type: Some(Box::new(t)),
                        },
                    ))),
                    ..Default::default()
                };
            }
            t
        }
        // levels sequences = 2 * levels + 1 messages; the outermost one is not counted
        // against the limit by prost (decoding starts at depth 0).
        let ok = nested(PROTOBUF_RECURSION_LIMIT / 2).encode_to_vec();
        assert!(TypeProto::decode(&ok[..]).is_ok());
        let too_deep = nested(PROTOBUF_RECURSION_LIMIT / 2 + 1).encode_to_vec();
        let e = TypeProto::decode(&too_deep[..]).unwrap_err();
        assert!(e.to_string().contains("recursion limit"), "{e}");
    }
}
