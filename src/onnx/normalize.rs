//! Opset normalization: older attribute forms rewritten into the newest input forms.
//!
//! ONNX moved several attributes to inputs over time (Reduce* and Squeeze/Unsqueeze `axes`,
//! Split `split`, Clip bounds, Pad `pads`/`value`, Slice ranges, TopK `k`, Upsample `scales`)
//! and changed a few behaviours (Softmax before opset 13). The IR has one form per op, the
//! newest; this module converts a node's attributes and inputs to it before `Op::build`.

use graphc_passes::ir::{Attr, Attrs, DType, Tensor};

/// One input of a node being imported.
#[derive(Clone, Debug)]
pub enum In {
    /// A named value.
    Name(String),
    /// An absent optional input.
    Absent,
    /// A constant created by normalization.
    Const(Tensor),
}

fn ints_tensor(v: Vec<i64>) -> Tensor {
    let n = v.len();
    Tensor::from_vec(&[n], v).expect("1-D length matches")
}

fn set_input(inputs: &mut Vec<In>, slot: usize, v: In) {
    while inputs.len() <= slot {
        inputs.push(In::Absent);
    }
    inputs[slot] = v;
}

/// Moves an ints attribute to input `slot` as an i64 tensor.
fn ints_attr_to_input(
    attrs: &mut Attrs,
    name: &str,
    inputs: &mut Vec<In>,
    slot: usize,
) -> Result<(), String> {
    if let Some(v) = attrs.take_as::<Vec<i64>>(name)? {
        set_input(inputs, slot, In::Const(ints_tensor(v)));
    }
    Ok(())
}

/// A scalar of `dtype` holding `v`.
fn scalar_of(dtype: DType, v: f32) -> Tensor {
    Tensor::scalar(v).cast(dtype)
}

/// Rewrites `(op_type, attrs, inputs)` into the IR's form for `opset`. Returns the op type
/// to build (renamed ops such as the deprecated `Scatter`). `dtype_of(i)` is the element type
/// of input `i` when known.
pub fn normalize(
    op_type: &str,
    opset: i64,
    attrs: &mut Attrs,
    inputs: &mut Vec<In>,
    dtype_of: &dyn Fn(usize) -> Option<DType>,
) -> Result<String, String> {
    // Attributes of opset 1-6 that carry no meaning in inference.
    for legacy in ["consumed_inputs", "is_test"] {
        attrs.take(legacy);
    }
    let mut op = op_type.to_string();
    match op_type {
        // The IR spells attribute fields in snake_case.
        "Gemm" => {
            for (from, to) in [("transA", "trans_a"), ("transB", "trans_b")] {
                if let Some(a) = attrs.take(from) {
                    attrs.insert(to, a);
                }
            }
            if opset < 7 {
                attrs.take_as::<i64>("broadcast")?;
            }
        }
        "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL1"
        | "ReduceL2" | "ReduceLogSum" | "ReduceLogSumExp" | "ReduceSumSquare" => {
            ints_attr_to_input(attrs, "axes", inputs, 1)?;
        }
        "Squeeze" | "Unsqueeze" => ints_attr_to_input(attrs, "axes", inputs, 1)?,
        "Split" => ints_attr_to_input(attrs, "split", inputs, 1)?,
        "Slice" if opset < 10 => {
            let starts = attrs
                .take_as::<Vec<i64>>("starts")?
                .ok_or("missing required attribute 'starts'")?;
            let ends = attrs
                .take_as::<Vec<i64>>("ends")?
                .ok_or("missing required attribute 'ends'")?;
            set_input(inputs, 1, In::Const(ints_tensor(starts)));
            set_input(inputs, 2, In::Const(ints_tensor(ends)));
            ints_attr_to_input(attrs, "axes", inputs, 3)?;
        }
        "TopK" if opset < 10 => {
            let k = attrs
                .take_as::<i64>("k")?
                .ok_or("missing required attribute 'k'")?;
            set_input(inputs, 1, In::Const(ints_tensor(vec![k])));
        }
        "Clip" if opset < 11 => {
            let dt = dtype_of(0).unwrap_or(DType::F32);
            let min = attrs.take_as::<f32>("min")?;
            let max = attrs.take_as::<f32>("max")?;
            if let Some(m) = min {
                set_input(inputs, 1, In::Const(scalar_of(dt, m)));
            }
            if let Some(m) = max {
                set_input(inputs, 2, In::Const(scalar_of(dt, m)));
            }
        }
        "Pad" if opset < 11 => {
            let dt = dtype_of(0).unwrap_or(DType::F32);
            let pads = attrs
                .take_as::<Vec<i64>>("pads")?
                .ok_or("missing required attribute 'pads'")?;
            set_input(inputs, 1, In::Const(ints_tensor(pads)));
            let value = attrs.take_as::<f32>("value")?.unwrap_or(0.0);
            set_input(inputs, 2, In::Const(scalar_of(dt, value)));
        }
        "Upsample" => {
            if let Some(scales) = attrs.take_as::<Vec<f32>>("scales")? {
                let n = scales.len();
                set_input(
                    inputs,
                    1,
                    In::Const(Tensor::from_vec(&[n], scales).expect("1-D")),
                );
            }
            attrs.take_as::<f32>("height_scale")?;
            attrs.take_as::<f32>("width_scale")?;
        }
        "Resize" if opset < 11 => {
            // (X, scales) -> (X, roi, scales).
            if inputs.len() == 2 {
                let scales = inputs.pop().expect("two inputs");
                inputs.push(In::Absent);
                inputs.push(scales);
            }
            if opset == 10 && !attrs.contains("coordinate_transformation_mode") {
                attrs.insert(
                    "coordinate_transformation_mode",
                    Attr::Str("asymmetric".into()),
                );
            }
        }
        "Softmax" | "LogSoftmax" | "Hardmax" if opset < 13 => {
            if !attrs.contains("axis") {
                attrs.insert("axis", Attr::Int(1));
            }
            attrs.insert("coerce_2d", Attr::Int(1));
        }
        "Dropout" if opset < 12 => {
            // Ignored in inference, but still type-checked.
            attrs.take_as::<f32>("ratio")?;
        }
        "BatchNormalization" => {
            if opset < 9 {
                match attrs.take_as::<i64>("spatial")? {
                    None | Some(1) => {}
                    Some(s) => return Err(format!("spatial={s} is not supported")),
                }
            }
        }
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Equal" | "Less" | "Greater" | "And" | "Or"
        | "Xor"
            if opset < 7 =>
        {
            attrs.take_as::<i64>("broadcast")?;
            if attrs.contains("axis") {
                return Err("legacy axis broadcasting is not supported".into());
            }
        }
        "Scatter" => op = "ScatterElements".into(),
        "Scan" if opset < 9 => {
            return Err(
                "the opset-8 form of Scan (with sequence_lens and a batch axis) is not supported"
                    .into(),
            )
        }
        "DFT" if opset < 20 => {
            // The axis attribute defaulted to 1 before it became an input (default -2).
            if !attrs.contains("axis") {
                attrs.insert("axis", Attr::Int(1));
            }
        }
        "Cast" if opset < 6 => {
            let to = attrs.take("to");
            if let Some(Attr::Str(s)) = &to {
                let code = match s.as_str() {
                    "FLOAT" => 1,
                    "UINT8" => 2,
                    "INT8" => 3,
                    "UINT16" => 4,
                    "INT16" => 5,
                    "INT32" => 6,
                    "INT64" => 7,
                    "STRING" => 8,
                    "BOOL" => 9,
                    "FLOAT16" => 10,
                    "DOUBLE" => 11,
                    "UINT32" => 12,
                    "UINT64" => 13,
                    _ => return Err(format!("unknown Cast type '{s}'")),
                };
                attrs.insert("to", Attr::Int(code));
            } else if let Some(a) = to {
                // Not the string form: `Op::build` checks it.
                attrs.insert("to", a);
            }
        }
        _ => {}
    }
    Ok(op)
}
