//! A minimal JIT for emitted machine code: bytes in, callable function pointer out.
//!
//! The bytes go through `cranelift_module::Module::define_function_bytes` into a
//! `cranelift_jit::JITModule`, exactly as they will go into a `cranelift_object` module for a
//! `.so`. This is a harness for tests, benchmarks and the peak measurement; the model compiler
//! puts its kernels into its own module next to the Cranelift-generated code.

use super::gemm::{emit_gemm, packed_b_len, GemmSpec, Isa};
use cranelift_codegen::ir::{types, AbiParam};
use cranelift_codegen::isa::CallConv;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};

/// Whether this CPU runs the emitted code (AVX2 and FMA).
pub fn host_supports_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether this CPU runs code emitted for `isa`.
pub fn host_supports(isa: Isa) -> bool {
    match isa {
        Isa::Avx2 => host_supports_avx2_fma(),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => host_supports_avx2_fma() && std::is_x86_feature_detected!("avx512f"),
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx512 => false,
    }
}

/// Finalized machine code owned by its JIT module; freed on drop.
pub struct JitCode {
    module: Option<JITModule>,
    ptr: *const u8,
}

impl JitCode {
    /// Defines `bytes` as a System V function with `params` pointer-sized arguments and no
    /// result, and finalizes it. Errors when the host lacks AVX2/FMA.
    pub fn new(name: &str, bytes: &[u8], params: usize) -> Result<Self, String> {
        if !host_supports_avx2_fma() {
            return Err("this CPU lacks AVX2/FMA".into());
        }
        let mut flags = settings::builder();
        flags.set("is_pic", "false").map_err(|e| e.to_string())?;
        let isa = cranelift_native::builder()?
            .finish(settings::Flags::new(flags))
            .map_err(|e| e.to_string())?;
        let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        let mut sig = module.make_signature();
        sig.call_conv = CallConv::SystemV;
        sig.params
            .extend((0..params).map(|_| AbiParam::new(types::I64)));
        let id = module
            .declare_function(name, Linkage::Export, &sig)
            .map_err(|e| e.to_string())?;
        module
            .define_function_bytes(id, 64, bytes, &[])
            .map_err(|e| e.to_string())?;
        module.finalize_definitions().map_err(|e| e.to_string())?;
        let ptr = module.get_finalized_function(id);
        Ok(JitCode {
            module: Some(module),
            ptr,
        })
    }

    /// The entry point.
    pub fn ptr(&self) -> *const u8 {
        self.ptr
    }
}

impl Drop for JitCode {
    fn drop(&mut self) {
        if let Some(module) = self.module.take() {
            // SAFETY: `ptr` is the only handle into this memory and dies with `self`.
            unsafe { module.free_memory() };
        }
    }
}

/// The signature of an emitted GEMM kernel (see [`emit_gemm`]).
pub type GemmFn =
    unsafe extern "C" fn(*const f32, *const f32, *mut f32, *const f32, usize, usize, *const f32);

/// A JIT-compiled GEMM kernel with a bounds-checked entry point.
pub struct JitGemm {
    spec: GemmSpec,
    code: JitCode,
}

impl JitGemm {
    /// Emits and compiles the kernel for `spec`; errors when this CPU lacks `spec.isa`.
    pub fn new(spec: &GemmSpec) -> Result<Self, String> {
        if !host_supports(spec.isa) {
            return Err(format!("this CPU lacks {:?}", spec.isa));
        }
        let bytes = emit_gemm(spec)?;
        let code = JitCode::new("gemm", &bytes, 7)?;
        Ok(JitGemm {
            spec: spec.clone(),
            code,
        })
    }

    /// The spec compiled.
    pub fn spec(&self) -> &GemmSpec {
        &self.spec
    }

    /// The raw entry point.
    pub fn func(&self) -> GemmFn {
        // SAFETY: the code was emitted with exactly this signature.
        unsafe { std::mem::transmute::<*const u8, GemmFn>(self.code.ptr()) }
    }

    /// Runs rows `m_begin..m_end` after checking every slice against the spec (no residual).
    pub fn run(
        &self,
        a: &[f32],
        b_packed: &[f32],
        c: &mut [f32],
        bias: Option<&[f32]>,
        rows: std::ops::Range<usize>,
    ) -> Result<(), String> {
        self.run_with(a, b_packed, c, bias, None, rows)
    }

    /// [`run`](Self::run) with a residual operand (C's layout) when the spec has one.
    pub fn run_with(
        &self,
        a: &[f32],
        b_packed: &[f32],
        c: &mut [f32],
        bias: Option<&[f32]>,
        residual: Option<&[f32]>,
        rows: std::ops::Range<usize>,
    ) -> Result<(), String> {
        let s = &self.spec;
        let a_len = if s.trans_a {
            (s.k - 1) * s.lda + s.m
        } else {
            (s.m - 1) * s.lda + s.k
        };
        let c_len = (s.m - 1) * s.ldc + s.n;
        if a.len() < a_len || c.len() < c_len || b_packed.len() < packed_b_len(s.k, s.n) {
            return Err("gemm: operand slice too short".into());
        }
        let bias_len = if s.row_bias { s.m } else { s.n };
        let bias = match (s.bias || s.row_bias, bias) {
            (true, Some(b)) if b.len() >= bias_len => b.as_ptr(),
            (false, None) => std::ptr::null(),
            _ => return Err("gemm: bias does not match the spec".into()),
        };
        let residual = match (s.residual, residual) {
            (true, Some(r)) if r.len() >= c_len => r.as_ptr(),
            (false, None) => std::ptr::null(),
            _ => return Err("gemm: residual does not match the spec".into()),
        };
        // SAFETY: the lengths cover every element the kernel touches for this spec, and the
        // kernel clamps the row range to `m`.
        unsafe {
            self.func()(
                a.as_ptr(),
                b_packed.as_ptr(),
                c.as_mut_ptr(),
                bias,
                rows.start,
                rows.end,
                residual,
            )
        };
        Ok(())
    }
}
