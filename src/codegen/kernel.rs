//! The contract between the model compiler and its kernels.
//!
//! A node of the optimized graph lowers to a [`Lowered`]: one or more [`Launch`]es run in
//! order, each calling one generated function with the uniform kernel ABI
//!
//! ```text
//! extern "C" fn(bufs: *const *mut u8, begin: u64, end: u64)
//! ```
//!
//! `bufs[i]` is the address of the launch's operand `i` ([`Operand`]: a node input or output,
//! a compile-time constant, or the node's scratch space), resolved by the entry function.
//! A launch declares `items` independent work items; the thread pool cuts `0..items` into
//! ranges that are multiples of `grain` (except the last) and calls the kernel once per range,
//! possibly on different threads at once. A kernel therefore writes only what its item range
//! owns, and ranges of one launch never depend on each other; launches of one node run one
//! after the other (a barrier between them).
//!
//! Kernels know every shape at compile time (the compiler specializes on concrete shapes), read
//! only their operands, and never call back into the host. The same kernels go into the JIT
//! module and into the object module of a `.so`, so they must not embed absolute addresses:
//! constants are operands, not symbols.

use cranelift_codegen::ir::{
    types, AbiParam, FuncRef, Function, Signature, Type, UserFuncName, Value,
};
use cranelift_codegen::isa::CallConv;
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{DataDescription, DataId, FuncId, Linkage, Module};
use graphc_passes::ir::ValueRef;
use std::collections::HashSet;

/// The CPU features kernels may specialize on (detected at compile time for the JIT, or given
/// for a `.so`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// AVX2 and FMA: the emitted 256-bit GEMM kernels may be used.
    pub avx2_fma: bool,
    /// AVX-512F: the 512-bit GEMM kernels may be used.
    pub avx512: bool,
}

impl Target {
    /// This machine's features.
    pub fn host() -> Target {
        use super::x86::gemm::Isa;
        use super::x86::jit::host_supports;
        Target {
            avx2_fma: host_supports(Isa::Avx2),
            avx512: host_supports(Isa::Avx512),
        }
    }

    /// Only what Cranelift's own 128-bit code needs (SSE4.1-era x86-64): the fallback path.
    pub fn baseline() -> Target {
        Target {
            avx2_fma: false,
            avx512: false,
        }
    }
}

/// What `bufs[i]` of a launch points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// The node's input slot `i` (must be present).
    Input(usize),
    /// The node's output `i`.
    Output(usize),
    /// A compile-time constant made by [`KernelCx::add_const`].
    Const(DataId),
    /// Byte offset into the node's scratch space ([`Lowered::scratch_bytes`] long, 64-byte
    /// aligned, contents undefined on entry, shared by all threads of a launch).
    Scratch(usize),
    /// The actual dims of the node's output `i`, one `i64` per dimension, which the kernel
    /// writes. Only for an output whose shape the data decides ([`KernelCx::is_bounded`]):
    /// its buffer has room for the upper bound its type declares, and the kernel writes the
    /// actual tensor densely (row-major for the actual dims) at the start of it.
    Dims(usize),
}

/// One call of a kernel over `0..items`.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The kernel (uniform ABI).
    pub func: FuncId,
    /// What each `bufs[i]` points at.
    pub operands: Vec<Operand>,
    /// Independent work items.
    pub items: u64,
    /// The pool hands out ranges that are multiples of this many items (the last may be
    /// shorter); also a hint of the smallest range worth a thread.
    pub grain: u64,
    /// A short name for profiles (e.g. "conv3x3.im2col").
    pub name: String,
}

/// A node compiled to kernels.
#[derive(Clone, Debug, Default)]
pub struct Lowered {
    /// Run in order.
    pub launches: Vec<Launch>,
    /// Scratch bytes the launches use (see [`Operand::Scratch`]).
    pub scratch_bytes: usize,
}

impl Lowered {
    /// One launch of `func` over `items` work items cut in multiples of `grain`, with
    /// `scratch_bytes` of scratch.
    pub fn one(
        func: FuncId,
        operands: Vec<Operand>,
        (items, grain): (u64, u64),
        name: &str,
        scratch_bytes: usize,
    ) -> Lowered {
        Lowered {
            launches: vec![Launch {
                func,
                operands,
                items,
                grain,
                name: name.into(),
            }],
            scratch_bytes,
        }
    }
}

/// The parameters of a kernel function under construction.
#[derive(Clone, Copy, Debug)]
pub struct KernelParams {
    /// `*const *mut u8`: the operand table.
    pub bufs: Value,
    /// First work item (i64).
    pub begin: Value,
    /// One past the last work item (i64).
    pub end: Value,
}

/// Everything a kernel emitter may add to the module being built.
pub struct KernelCx<'m> {
    module: &'m mut dyn Module,
    /// The CPU features the code may use.
    pub target: Target,
    prefix: String,
    counter: usize,
    fctx: FunctionBuilderContext,
    bounded: HashSet<ValueRef>,
}

impl<'m> KernelCx<'m> {
    /// Kernels of `module`; every symbol they declare starts with `prefix`.
    pub fn new(module: &'m mut dyn Module, target: Target, prefix: &str) -> Self {
        KernelCx {
            module,
            target,
            prefix: prefix.to_string(),
            counter: 0,
            fctx: FunctionBuilderContext::new(),
            bounded: HashSet::new(),
        }
    }

    /// Marks values whose shape the data decides as bounded: their type holds an upper bound
    /// and their kernels report the actual dims through [`Operand::Dims`].
    pub fn with_bounded(mut self, values: impl IntoIterator<Item = ValueRef>) -> Self {
        self.bounded.extend(values);
        self
    }

    /// Whether `v` is bounded (see [`with_bounded`](Self::with_bounded)): a kernel of a
    /// data-dependent shape lowers only such outputs and declines the others.
    pub fn is_bounded(&self, v: ValueRef) -> bool {
        self.bounded.contains(&v)
    }

    /// The module (for anything the helpers here do not cover).
    pub fn module(&mut self) -> &mut dyn Module {
        self.module
    }

    /// The pointer type (i64).
    pub fn ptr_type(&self) -> Type {
        self.module.target_config().pointer_type()
    }

    fn unique(&mut self, hint: &str) -> String {
        self.counter += 1;
        let clean: String = hint
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("{}k{}_{}", self.prefix, self.counter, clean)
    }

    /// The uniform kernel signature `(bufs: i64, begin: i64, end: i64) -> ()`, System V.
    pub fn kernel_signature(&self) -> Signature {
        let mut sig = Signature::new(CallConv::SystemV);
        sig.params.push(AbiParam::new(self.ptr_type()));
        sig.params.push(AbiParam::new(types::I64));
        sig.params.push(AbiParam::new(types::I64));
        sig
    }

    /// Declares and defines a kernel with the uniform ABI. `build` gets a builder positioned in
    /// the (sealed) entry block, with the three parameters, and must emit the whole body
    /// including its `return`. Returns the function to put in a [`Launch`].
    pub fn define_kernel(
        &mut self,
        hint: &str,
        build: impl FnOnce(&mut FunctionBuilder, KernelParams) -> Result<(), String>,
    ) -> Result<FuncId, String> {
        self.define_kernel_calling(hint, &[], |b, params, _| build(b, params))
    }

    /// [`define_kernel`](Self::define_kernel) for a kernel that calls other functions of the
    /// module (e.g. an emitted GEMM made by [`define_bytes_function`](Self::define_bytes_function)):
    /// `build` gets one `FuncRef` per entry of `callees`, for `call`.
    pub fn define_kernel_calling(
        &mut self,
        hint: &str,
        callees: &[FuncId],
        build: impl FnOnce(&mut FunctionBuilder, KernelParams, &[FuncRef]) -> Result<(), String>,
    ) -> Result<FuncId, String> {
        let sig = self.kernel_signature();
        self.define_function(hint, sig, callees, |b, params, refs| {
            build(
                b,
                KernelParams {
                    bufs: params[0],
                    begin: params[1],
                    end: params[2],
                },
                refs,
            )
        })
    }

    /// Declares and defines a local function of any signature (helpers a kernel calls).
    /// `build` gets a builder in the sealed entry block, the block's parameters, and one
    /// `FuncRef` per entry of `callees`.
    pub fn define_function(
        &mut self,
        hint: &str,
        sig: Signature,
        callees: &[FuncId],
        build: impl FnOnce(&mut FunctionBuilder, &[Value], &[FuncRef]) -> Result<(), String>,
    ) -> Result<FuncId, String> {
        let name = self.unique(hint);
        let frontend = self.module.target_config();
        let id = self
            .module
            .declare_function(&name, Linkage::Local, &sig)
            .map_err(|e| format!("declaring {name}: {e}"))?;
        let mut func = Function::with_name_signature(UserFuncName::user(0, id.as_u32()), sig);
        let refs: Vec<FuncRef> = callees
            .iter()
            .map(|&c| self.module.declare_func_in_func(c, &mut func))
            .collect();
        {
            let mut b = FunctionBuilder::new(&mut func, &mut self.fctx);
            let entry = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            b.seal_block(entry);
            let params = b.block_params(entry).to_vec();
            build(&mut b, &params, &refs)?;
            b.seal_all_blocks();
            b.finalize(frontend);
        }
        let mut ctx = Context::for_function(func);
        self.module
            .define_function(id, &mut ctx)
            .map_err(|e| format!("compiling {name}: {e:?}"))?;
        Ok(id)
    }

    /// Places emitted machine code (position independent, no relocations) as a local function
    /// with `params` pointer-sized System V parameters and no result.
    pub fn define_bytes_function(
        &mut self,
        hint: &str,
        bytes: &[u8],
        params: usize,
    ) -> Result<FuncId, String> {
        let name = self.unique(hint);
        let mut sig = Signature::new(CallConv::SystemV);
        sig.params
            .extend((0..params).map(|_| AbiParam::new(types::I64)));
        let id = self
            .module
            .declare_function(&name, Linkage::Local, &sig)
            .map_err(|e| format!("declaring {name}: {e}"))?;
        self.module
            .define_function_bytes(id, 64, bytes, &[])
            .map_err(|e| format!("defining {name}: {e}"))?;
        Ok(id)
    }

    /// A read-only constant (weights, packed panels, tables), 64-byte aligned.
    pub fn add_const(&mut self, hint: &str, bytes: Vec<u8>) -> Result<DataId, String> {
        let name = self.unique(hint);
        let id = self
            .module
            .declare_data(&name, Linkage::Local, false, false)
            .map_err(|e| format!("declaring {name}: {e}"))?;
        let mut desc = DataDescription::new();
        desc.define(bytes.into_boxed_slice());
        desc.set_align(64);
        self.module
            .define_data(id, &desc)
            .map_err(|e| format!("defining {name}: {e}"))?;
        Ok(id)
    }

    /// [`add_const`](Self::add_const) of f32 values.
    pub fn add_const_f32(&mut self, hint: &str, values: &[f32]) -> Result<DataId, String> {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.add_const(hint, bytes)
    }
}
