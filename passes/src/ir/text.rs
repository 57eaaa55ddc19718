//! The IR text format: a printer and a parser that round-trip exactly,
//! `parse(&print(g)) == g` for every verified graph whose tensors are all small, and
//! `parse_with_constants(&print(g), &constants(g)) == g` for every verified graph.
//!
//! It owns the syntax only: the ops and their attribute defaults come from `Op::build` and
//! `Op::attrs` (the printer writes exactly the non-default attributes), and the structural
//! rules come from the verifier, which the parser runs on what it built.
//!
//! ```text
//! graph "main" (%x: f32[1,3,N,?], %w: f32[8,3,3,3] = f32[8,3,3,3] #1a2b3c4d5e6f7788 [0.1, 0.2, 0.3, 0.4, ... 216 values]) {
//!   %c0: i64[2] = constant {value: i64[2] [1, -1]}
//!   %y: f32[1,8,N,?] = conv {pads: [1, 1, 1, 1], strides: [1, 1]} (%x, %w, _) @conv_1
//!   %a: f32[..], %b: f32[..] = split {axis: 1} (%y)
//!   return %a, %b as "out_b"
//! }
//! ```
//!
//! # Grammar
//!
//! Whitespace (newlines included) separates tokens and is otherwise insignificant; `;` starts
//! a comment that runs to the end of the line.
//!
//! ```text
//! file     := graph
//! graph    := 'graph' STRING '(' [param {',' param} [',']] ')' '{' {node} return '}'
//! param    := VALUE ':' type ['=' tensor] ['@' NAME]      ; an `input` node
//! node     := [result {',' result} '='] OP [attrs] [args] ['@' NAME]
//! result   := VALUE ':' type
//! attrs    := '{' [IDENT ':' attr {',' IDENT ':' attr} [',']] '}'
//! attr     := INT | FLOAT | STRING | DTYPE | '[' [scalar {',' scalar}] ']' | tensor | graph
//! args     := '(' [arg {',' arg}] ')'
//! arg      := VALUE | '_'                                  ; `_`: absent optional input
//! return   := 'return' [VALUE ['as' STRING] {',' VALUE ['as' STRING]}]
//! type     := DTYPE shape
//! shape    := '[' '..' ']' | '[' [dim {',' dim}] ']'       ; `[..]` unranked, `[]` scalar
//! dim      := UINT | '?' | SYM | STRING                     ; known, unknown, symbolic
//! tensor   := DTYPE '[' [UINT {',' UINT}] ']' data
//! data     := '[' [elem {',' elem}] ']'                     ; every element, row-major
//!           | DIGEST '[' {elem ','} '...' UINT 'values' ']' ; large: digest and a preview
//! ```
//!
//! - `VALUE` is `%name`, `NAME` is `name` (node names); either is bare when it matches
//!   `[A-Za-z0-9_.:/-]+` and does not end in `:`, and a quoted `STRING` otherwise
//!   (`%"my value"`). `SYM` is `[A-Za-z_][A-Za-z0-9_]*`; other symbolic dims are quoted.
//! - `STRING` is double-quoted with the escapes `\\`, `\"`, `\n`, `\r`, `\t`, `\0` and
//!   `\u{hex}`; graph names and export names are always quoted.
//! - `OP` is `Op::name()` (snake_case); `DTYPE` is `DType::name()` (`f32`, `bf16`, `bool`,
//!   `string`, ...). A bare `DTYPE` as an attribute is the string holding that name.
//! - Integers are decimal. Floats are Rust's shortest round-trip form (`1.0`, `1e-5`, `-0.0`,
//!   `inf`, `-inf`, `NaN`), so an attribute float always differs from an int; a NaN other
//!   than the default one is written `NaN(0x<bits>)`. `f16`/`bf16` elements are written as
//!   their exact `f32` value; bools as `true`/`false`.
//! - Attribute lists are `Ints` when all elements are integers, `Floats` when some are floats,
//!   `Strs` when all are strings; `[]` is an empty list of any kind.
//! - Tensors of at most [`INLINE_LIMIT`] elements print in full. Larger ones print
//!   `#<Tensor::digest() in 16 hex digits>` with their first few values and their count;
//!   parsing those needs the data: [`parse_with_constants`] with a map from [`constants`].
//! - Value names are scoped per graph (a subgraph starts a fresh scope; outer values reach it
//!   only as explicit inputs). Values named `""` may repeat but cannot be referenced.
//! - Nodes print in `Graph::node_ids()` order; `input` nodes appear only in the header, so
//!   they must come first (the verifier checks this).

use std::collections::HashMap;
use std::fmt;

use super::attr::Attr;
use super::graph::Graph;
use super::tensor::Tensor;

mod elem;
mod parse;
mod print;

pub use parse::ParseError;

/// Tensors with at most this many elements are printed in full by [`print`].
pub const INLINE_LIMIT: usize = 16;

/// Prints a graph. Tensors larger than [`INLINE_LIMIT`] elements are abbreviated to their
/// digest; see [`print_full`] to print everything.
pub fn print(g: &Graph) -> String {
    print::print_graph(g, INLINE_LIMIT)
}

/// Prints a graph with every tensor in full, so [`parse`] alone can read it back.
pub fn print_full(g: &Graph) -> String {
    print::print_graph(g, usize::MAX)
}

/// Parses a graph. Errors on an abbreviated (digest-only) tensor; use
/// [`parse_with_constants`] for those.
pub fn parse(text: &str) -> Result<Graph, ParseError> {
    parse::parse_graph_text(text, None)
}

/// Parses a graph, looking abbreviated tensors up by digest in `constants` (see
/// [`constants`]).
pub fn parse_with_constants(
    text: &str,
    constants: &HashMap<u64, Tensor>,
) -> Result<Graph, ParseError> {
    parse::parse_graph_text(text, Some(constants))
}

/// Every tensor held by the graph's ops (constants, input defaults, tensor attributes),
/// including those in subgraphs, keyed by [`Tensor::digest`].
pub fn constants(g: &Graph) -> HashMap<u64, Tensor> {
    fn collect(g: &Graph, out: &mut HashMap<u64, Tensor>) {
        for (_, node) in g.nodes() {
            for (_, attr) in node.op.attrs() {
                match attr {
                    Attr::Tensor(t) => {
                        out.insert(t.digest(), t);
                    }
                    Attr::Graph(sub) => collect(&sub, out),
                    _ => {}
                }
            }
        }
    }
    let mut out = HashMap::new();
    collect(g, &mut out);
    out
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print(self))
    }
}

/// A value name as the text spells it (`%x`, `%"a b"`), for messages.
pub(crate) fn shown_value(name: &str) -> String {
    let mut s = String::from("%");
    print::write_name(&mut s, name);
    s
}

/// A node name as the text spells it (`@conv_1`, `@"a b"`), for messages.
pub(crate) fn shown_node(name: &str) -> String {
    let mut s = String::from("@");
    print::write_name(&mut s, name);
    s
}

/// Whether `name` can be written without quotes after `%` or `@`.
fn is_bare_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(is_name_char) && !name.ends_with(':')
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '-')
}

/// Whether a symbolic dim can be written without quotes.
fn is_bare_sym(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests;
