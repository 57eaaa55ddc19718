//! Attribute values at the boundary of the IR.
//!
//! The importer and the text parser both produce a bag of [`Attr`]s per node and hand it to
//! `Op::build`, which turns it into the typed fields of one [`super::Op`] variant at once: past
//! that point nothing is keyed by string. [`AttrType`] converts each field type to and from
//! an [`Attr`].

use super::graph::Graph;
use super::tensor::Tensor;
use super::types::DType;

/// An untyped attribute value, as read from a model file or from IR text.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f32),
    /// A string.
    Str(String),
    /// A list of integers.
    Ints(Vec<i64>),
    /// A list of floats.
    Floats(Vec<f32>),
    /// A list of strings.
    Strs(Vec<String>),
    /// A tensor.
    Tensor(Tensor),
    /// A subgraph.
    Graph(Box<Graph>),
}

impl Attr {
    /// A short name of the attribute's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Attr::Int(_) => "int",
            Attr::Float(_) => "float",
            Attr::Str(_) => "string",
            Attr::Ints(_) => "ints",
            Attr::Floats(_) => "floats",
            Attr::Strs(_) => "strings",
            Attr::Tensor(_) => "tensor",
            Attr::Graph(_) => "graph",
        }
    }
}

/// A named list of attributes, consumed field by field by `Op::build`.
#[derive(Clone, Debug, Default)]
pub struct Attrs {
    items: Vec<(String, Attr)>,
}

impl Attrs {
    /// An empty list.
    pub fn new() -> Attrs {
        Attrs::default()
    }

    /// Adds an attribute. A later duplicate replaces an earlier one.
    pub fn insert(&mut self, name: impl Into<String>, value: Attr) {
        let name = name.into();
        self.items.retain(|(n, _)| *n != name);
        self.items.push((name, value));
    }

    /// Removes and returns the named attribute.
    pub fn take(&mut self, name: &str) -> Option<Attr> {
        let i = self.items.iter().position(|(n, _)| n == name)?;
        Some(self.items.remove(i).1)
    }

    /// Removes, converts and returns the named attribute, or `None` when absent.
    pub fn take_as<T: AttrType>(&mut self, name: &str) -> Result<Option<T>, String> {
        match self.take(name) {
            None => Ok(None),
            Some(a) => T::from_attr(a)
                .map(Some)
                .map_err(|e| format!("attribute '{name}': {e}")),
        }
    }

    /// Whether an attribute of that name is present.
    pub fn contains(&self, name: &str) -> bool {
        self.items.iter().any(|(n, _)| n == name)
    }

    /// Names of the attributes not consumed yet.
    pub fn remaining(&self) -> Vec<&str> {
        self.items.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Iterates over the attributes.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Attr)> {
        self.items.iter().map(|(n, a)| (n.as_str(), a))
    }
}

/// A type an op attribute field can have.
pub trait AttrType: Sized + Clone + PartialEq {
    /// Converts from the untyped form; the error says what was expected.
    fn from_attr(a: Attr) -> Result<Self, String>;
    /// Converts to the untyped form; `None` means "absent" (an unset optional).
    fn to_attr(&self) -> Option<Attr>;
}

fn mismatch<T>(want: &str, got: &Attr) -> Result<T, String> {
    Err(format!("expected {want}, got {}", got.kind()))
}

impl AttrType for i64 {
    fn from_attr(a: Attr) -> Result<Self, String> {
        match a {
            Attr::Int(v) => Ok(v),
            other => mismatch("int", &other),
        }
    }
    fn to_attr(&self) -> Option<Attr> {
        Some(Attr::Int(*self))
    }
}

impl AttrType for f32 {
    fn from_attr(a: Attr) -> Result<Self, String> {
        match a {
            Attr::Float(v) => Ok(v),
            Attr::Int(v) => Ok(v as f32),
            other => mismatch("float", &other),
        }
    }
    fn to_attr(&self) -> Option<Attr> {
        Some(Attr::Float(*self))
    }
}

impl AttrType for bool {
    fn from_attr(a: Attr) -> Result<Self, String> {
        match a {
            Attr::Int(0) => Ok(false),
            Attr::Int(1) => Ok(true),
            Attr::Int(v) => Err(format!("expected 0 or 1, got {v}")),
            other => mismatch("int (0 or 1)", &other),
        }
    }
    fn to_attr(&self) -> Option<Attr> {
        Some(Attr::Int(*self as i64))
    }
}

impl AttrType for String {
    fn from_attr(a: Attr) -> Result<Self, String> {
        match a {
            Attr::Str(v) => Ok(v),
            other => mismatch("string", &other),
        }
    }
    fn to_attr(&self) -> Option<Attr> {
        Some(Attr::Str(self.clone()))
    }
}

impl AttrType for Vec<i64> {
    fn from_attr(a: Attr) -> Result<Self, String> {
        match a {
            Attr::Ints(v) => Ok(v),
            Attr::Floats(v) if v.is_empty() => Ok(vec![]),
            Attr::Strs(v) if v.is_empty() => Ok(vec![]),
            other => mismatch("ints", &other),
        }
    }
    fn to_attr(&self) -> Option<Attr> {
        Some(Attr::Ints(self.clone()))
    }
}

impl AttrType for Vec<f32> {
    fn from_attr(a: Attr) -> Result<Self, String> {
        match a {
            Attr::Floats(v) => Ok(v),
            Attr::Ints(v) => Ok(v.into_iter().map(|x| x as f32).collect()),
            Attr::Strs(v) if v.is_empty() => Ok(vec![]),
            other => mismatch("floats", &other),
        }
    }
    fn to_attr(&self) -> Option<Attr> {
        Some(Attr::Floats(self.clone()))
    }
}

impl AttrType for Vec<String> {
    fn from_attr(a: Attr) -> Result<Self, String> {
        match a {
            Attr::Strs(v) => Ok(v),
            Attr::Ints(v) if v.is_empty() => Ok(vec![]),
            Attr::Floats(v) if v.is_empty() => Ok(vec![]),
            other => mismatch("strings", &other),
        }
    }
    fn to_attr(&self) -> Option<Attr> {
        Some(Attr::Strs(self.clone()))
    }
}

impl AttrType for Tensor {
    fn from_attr(a: Attr) -> Result<Self, String> {
        match a {
            Attr::Tensor(v) => Ok(v),
            other => mismatch("tensor", &other),
        }
    }
    fn to_attr(&self) -> Option<Attr> {
        Some(Attr::Tensor(self.clone()))
    }
}

impl AttrType for Box<Graph> {
    fn from_attr(a: Attr) -> Result<Self, String> {
        match a {
            Attr::Graph(v) => Ok(v),
            other => mismatch("graph", &other),
        }
    }
    fn to_attr(&self) -> Option<Attr> {
        Some(Attr::Graph(self.clone()))
    }
}

impl AttrType for DType {
    fn from_attr(a: Attr) -> Result<Self, String> {
        match a {
            Attr::Int(code) => DType::from_onnx(code as i32).ok_or_else(|| {
                format!(
                    "unsupported element type {} ({code})",
                    DType::onnx_code_name(code as i32)
                )
            }),
            Attr::Str(s) => {
                DType::from_name(&s).ok_or_else(|| format!("unknown element type '{s}'"))
            }
            other => mismatch("element type", &other),
        }
    }
    fn to_attr(&self) -> Option<Attr> {
        Some(Attr::Str(self.name().to_string()))
    }
}

impl<T: AttrType> AttrType for Option<T> {
    fn from_attr(a: Attr) -> Result<Self, String> {
        T::from_attr(a).map(Some)
    }
    fn to_attr(&self) -> Option<Attr> {
        self.as_ref().and_then(T::to_attr)
    }
}

/// `auto_pad` of convolutions and pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum AutoPad {
    /// Explicit `pads`.
    #[default]
    NotSet,
    /// Pad so that output = ceil(input / stride), extra padding at the end.
    SameUpper,
    /// Pad so that output = ceil(input / stride), extra padding at the start.
    SameLower,
    /// No padding.
    Valid,
}

impl AttrType for AutoPad {
    fn from_attr(a: Attr) -> Result<Self, String> {
        match a {
            Attr::Str(s) => match s.as_str() {
                "NOTSET" | "" => Ok(AutoPad::NotSet),
                "SAME_UPPER" => Ok(AutoPad::SameUpper),
                "SAME_LOWER" => Ok(AutoPad::SameLower),
                "VALID" => Ok(AutoPad::Valid),
                _ => Err(format!("unknown auto_pad '{s}'")),
            },
            other => mismatch("string", &other),
        }
    }
    fn to_attr(&self) -> Option<Attr> {
        let s = match self {
            AutoPad::NotSet => "NOTSET",
            AutoPad::SameUpper => "SAME_UPPER",
            AutoPad::SameLower => "SAME_LOWER",
            AutoPad::Valid => "VALID",
        };
        Some(Attr::Str(s.into()))
    }
}
