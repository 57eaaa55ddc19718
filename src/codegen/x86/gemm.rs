//! Shape-specialized single-precision GEMM kernels as x86-64 AVX2/FMA (or AVX-512F) machine
//! code.
//!
//! [`emit_gemm`] turns a [`GemmSpec`] (every size known at compile time) into the bytes of one
//! position-independent leaf function with the System V ABI:
//!
//! ```text
//! extern "C" fn(a: *const f32, b_packed: *const f32, c: *mut f32, bias: *const f32,
//!               m_begin: usize, m_end: usize, residual: *const f32)
//! ```
//!
//! It computes rows `[m_begin, min(m_end, m))` of
//! `C = act(C_prev? + A·B + bias[col]? + bias[row]? + residual?)`; the residual has C's
//! layout (`ldc`), the row bias is indexed by the absolute row (conv bias per output channel).
//! Unused pointers may be anything (null). `A` is read
//! in place (row-major with leading dimension `lda`, or its transpose); `B` is packed ahead of
//! time by [`pack_b`] into K blocks of panels of [`NR`] columns. The code has no calls, no
//! absolute addresses and no relocations, so the same bytes serve the JIT and a shared object.
//!
//! Structure (LIBXSMM/BLIS style, specialized at emit time):
//! - the K dimension is cut into blocks of at most `kc` (so that a 6×kc sliver of A stays in L1
//!   and the contiguous kc×N slab of packed B in L2); C is re-loaded between blocks;
//! - for each K block, rows go in blocks of [`MR`] = 6, and for each row block the column panels
//!   go left to right; the AVX2 6×16 micro-tile keeps 12 ymm accumulators, loads two B vectors
//!   and broadcasts one A element per row per k step (`vfmadd231ps`), K unrolled by 4, and
//!   prefetches packed B 4 KiB ahead; the AVX-512 tile is 6×64 (24 zmm accumulators, 4 panels);
//! - fewer rows (the M tail, or `m_begin..m_end` not a multiple of 6) use specialized 1- to
//!   5-row tiles that cover several panels at once to keep the accumulators busy;
//! - the N tail is a zero-padded panel whose stores (and C/bias loads) are masked: AVX2 uses
//!   `vmaskmovps` with a mask built from an immediate (`mov r64, imm64; vmovq; vpmovsxbd`),
//!   AVX-512 an opmask (`mov; kmovw k1`);
//! - the epilogue (C accumulation, bias, activation) runs in registers before the one store.
//!
//! It deliberately does not choose when to use itself, thread, or handle other dtypes: the
//! caller (kernel selection) owns that.

use iced_x86::code_asm::*;

/// Rows of the full micro-tile.
pub const MR: usize = 6;
/// Columns of one packed B panel (two ymm or one zmm vector).
pub const NR: usize = 16;

/// Upper bound on the K block length (see [`k_block`]); a 6×1024 A sliver is 24 KiB, half of
/// L1. Measured against 256 and 512: equal or up to ~5% better on the conv-like shapes.
const KC_MAX: usize = 1024;
/// Bytes of packed B that one K block may span, to stay within L2.
const B_SLAB_BYTES: usize = 1 << 20;
/// How far ahead of the current B row the 4- to 6-row tiles prefetch (measured: 3-8% on
/// shapes that stream B from memory, e.g. 49×512×4608, neutral elsewhere).
const B_PREFETCH: i32 = 4096;

/// The vector instruction set a kernel is emitted for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX2 + FMA: 16 ymm registers of 8 lanes, masked tails by `vmaskmovps`.
    Avx2,
    /// AVX-512F: 32 zmm registers of 16 lanes, masked tails by opmask `k1`.
    Avx512,
}

impl Isa {
    /// f32 lanes per vector register.
    pub fn lanes(self) -> usize {
        match self {
            Isa::Avx2 => 8,
            Isa::Avx512 => 16,
        }
    }

    fn regs(self) -> usize {
        match self {
            Isa::Avx2 => 16,
            Isa::Avx512 => 32,
        }
    }

    /// Accumulator registers a tile may use (leaving room for B, A and epilogue temporaries).
    fn accumulators(self) -> usize {
        match self {
            Isa::Avx2 => 12,
            Isa::Avx512 => 24,
        }
    }
}

/// The activation applied in registers after bias and before the store.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Epilogue {
    /// No activation.
    None,
    /// `max(x, 0)`, NaN propagating.
    Relu,
    /// `min(max(x, lo), hi)` (ReLU6 is `Clip { lo: 0.0, hi: 6.0 }`), NaN propagating.
    Clip {
        /// Lower bound.
        lo: f32,
        /// Upper bound.
        hi: f32,
    },
}

/// One GEMM, all sizes known at compile time: `C[m×n] = act(C_prev? + A[m×k]·B[k×n] + bias?)`.
#[derive(Clone, Debug, PartialEq)]
pub struct GemmSpec {
    /// Rows of A and C.
    pub m: usize,
    /// Columns of B and C.
    pub n: usize,
    /// The reduction length.
    pub k: usize,
    /// Leading dimension of A in elements: the row stride of A (`>= k`), or with `trans_a` the
    /// row stride of the stored `k×m` matrix (`>= m`).
    pub lda: usize,
    /// Row stride of C in elements (`>= n`).
    pub ldc: usize,
    /// A is stored transposed (`k×m`, element `(i, p)` at `a[p*lda + i]`).
    pub trans_a: bool,
    /// `C += A·B` (the previous C is read) instead of `C = A·B`.
    pub accumulate: bool,
    /// Add a per-column bias of length `n`.
    pub bias: bool,
    /// Add a per-row bias of length `m` (same pointer argument as `bias`; not both).
    pub row_bias: bool,
    /// Add `residual[i*ldc + j]` (the seventh argument) before the activation.
    pub residual: bool,
    /// The activation.
    pub act: Epilogue,
    /// The instruction set (the caller checks that the target CPU has it).
    pub isa: Isa,
}

impl GemmSpec {
    /// A plain `C = A·B` with dense row-major operands.
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        GemmSpec {
            m,
            n,
            k,
            lda: k,
            ldc: n,
            trans_a: false,
            accumulate: false,
            bias: false,
            row_bias: false,
            residual: false,
            act: Epilogue::None,
            isa: Isa::Avx2,
        }
    }

    /// Checks sizes and that every byte offset the code forms fits a 32-bit displacement.
    pub fn validate(&self) -> Result<(), String> {
        let GemmSpec {
            m, n, k, lda, ldc, ..
        } = *self;
        if m == 0 || n == 0 || k == 0 {
            return Err(format!("gemm: empty shape m={m} n={n} k={k}"));
        }
        let min_lda = if self.trans_a { m } else { k };
        if lda < min_lda {
            return Err(format!("gemm: lda={lda} is less than {min_lda}"));
        }
        if ldc < n {
            return Err(format!("gemm: ldc={ldc} is less than n={n}"));
        }
        let limit = i32::MAX as usize / 16;
        let big = [
            lda.checked_mul(4 * 8),
            ldc.checked_mul(4 * 8),
            k.checked_mul(4 * NR * 8),
        ];
        if m > limit || n > limit || big.iter().any(|b| b.is_none_or(|b| b > i32::MAX as usize)) {
            return Err(format!(
                "gemm: sizes too large (m={m} n={n} k={k} lda={lda} ldc={ldc})"
            ));
        }
        if self.bias && self.row_bias {
            return Err("gemm: a column bias and a row bias share one pointer".into());
        }
        if let Epilogue::Clip { lo, hi } = self.act {
            if lo.is_nan() || hi.is_nan() || lo > hi {
                return Err(format!("gemm: bad clip bounds [{lo}, {hi}]"));
            }
        }
        Ok(())
    }

    /// The K block length, [`k_block`] of this shape.
    pub fn kc(&self) -> usize {
        k_block(self.k, self.n)
    }
}

/// The K block length for a `k×n` B: `k` itself when small, otherwise `k` split into equal
/// blocks (multiples of 4) no longer than 1024 whose packed slab (kc × padded n) fits 1 MiB.
pub fn k_block(k: usize, n: usize) -> usize {
    let slab_row = panels(n).max(1) * NR * 4;
    let kc_max = (B_SLAB_BYTES / slab_row).clamp(64, KC_MAX);
    if k <= kc_max {
        return k.max(1);
    }
    let blocks = k.div_ceil(kc_max);
    k.div_ceil(blocks).next_multiple_of(4)
}

/// The number of [`NR`]-column panels for `n` columns.
pub fn panels(n: usize) -> usize {
    n.div_ceil(NR)
}

/// The length in floats of `B` packed by [`pack_b`] (`usize::MAX` if it would overflow).
pub fn packed_b_len(k: usize, n: usize) -> usize {
    let kc = k_block(k, n);
    (k.div_ceil(kc) * kc).saturating_mul(panels(n) * NR)
}

/// Packs `B` (`k×n` row-major, or `n×k` row-major when `trans_b`) for the kernels: K is cut
/// into blocks of `kc = k_block(k, n)` rows (the last one zero-padded to `kc`); each block
/// holds `ceil(n/16)` panels of `kc` rows × 16 consecutive columns (the last panel
/// zero-padded). Element `(p, c)` goes to `((p/kc * panels + c/16) * kc + p%kc) * 16 + c%16`,
/// so one K block of all panels (what a row block sweeps) is contiguous.
pub fn pack_b(b: &[f32], k: usize, n: usize, trans_b: bool) -> Result<Vec<f32>, String> {
    let len = packed_b_len(k, n);
    if len == usize::MAX || k.checked_mul(n).is_none_or(|kn| b.len() < kn) {
        return Err(format!("pack_b: {} elements for a {k}x{n} matrix", b.len()));
    }
    let (kc, np) = (k_block(k, n), panels(n));
    let mut out = vec![0.0f32; len];
    for p in 0..k {
        let row = (p / kc * np * kc + p % kc) * NR;
        for col in 0..n {
            let x = if trans_b {
                b[col * k + p]
            } else {
                b[p * n + col]
            };
            out[row + (col / NR) * kc * NR + col % NR] = x;
        }
    }
    Ok(out)
}

const YMM: [AsmRegisterYmm; 16] = [
    ymm0, ymm1, ymm2, ymm3, ymm4, ymm5, ymm6, ymm7, ymm8, ymm9, ymm10, ymm11, ymm12, ymm13, ymm14,
    ymm15,
];
const XMM: [AsmRegisterXmm; 16] = [
    xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7, xmm8, xmm9, xmm10, xmm11, xmm12, xmm13, xmm14,
    xmm15,
];
const ZMM: [AsmRegisterZmm; 32] = [
    zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9, zmm10, zmm11, zmm12, zmm13, zmm14,
    zmm15, zmm16, zmm17, zmm18, zmm19, zmm20, zmm21, zmm22, zmm23, zmm24, zmm25, zmm26, zmm27,
    zmm28, zmm29, zmm30, zmm31,
];

// General-purpose register roles (System V arguments first).
const A_BASE: AsmRegister64 = rdi;
const B_BASE: AsmRegister64 = rsi;
const C_BASE: AsmRegister64 = rdx;
const BIAS: AsmRegister64 = rcx;
/// The current row `i`.
const ROW: AsmRegister64 = r8;
const M_END: AsmRegister64 = r9;
/// Byte offset of the current panel group in C and bias (`j*4` for first column `j`).
const COL: AsmRegister64 = r10;
const B_PTR: AsmRegister64 = r11;
const COUNT: AsmRegister64 = r12;
const C_PTR: AsmRegister64 = r13;
/// The current K block start `k0` in elements.
const K0: AsmRegister64 = r14;
/// Bit 0: load C before the epilogue; bit 1: this is the last K block (bias, activation).
const FLAGS: AsmRegister64 = r15;
/// The current K block length.
const KC: AsmRegister64 = rbp;
const A_PTR: AsmRegister64 = rax;
const SCRATCH: AsmRegister64 = rbx;

const FLAG_LOAD_C: i32 = 1;
const FLAG_LAST: i32 = 2;
const SAVED: [AsmRegister64; 6] = [rbx, rbp, r12, r13, r14, r15];
/// Where the seventh (stack) argument, `residual`, is after the prologue: above the saved
/// first row (8), the pushed registers and the return address.
const RESIDUAL_ARG: i32 = 8 + 8 * SAVED.len() as i32 + 8;

/// One column vector of a tile: its offsets and how many lanes are valid.
#[derive(Clone, Copy)]
struct Vector {
    /// Byte offset in packed B (from the group's first panel, row 0).
    b_disp: i32,
    /// Byte offset in a C row and in bias (from the group's first column).
    c_disp: i32,
    /// Valid lanes; fewer than the register's means masked loads and stores.
    lanes: usize,
    /// Whether `lanes` is less than a full register.
    masked: bool,
}

/// Whether an epilogue step is emitted never, always, or tested at run time.
#[derive(Clone, Copy, PartialEq)]
enum When {
    Never,
    Always,
    Flag(i32),
}

struct Emitter<'s> {
    a: CodeAssembler,
    spec: &'s GemmSpec,
    isa: Isa,
    /// Bytes between consecutive rows of A, and between consecutive k of A.
    a_row: i32,
    a_k: i32,
    load_c: When,
    last: When,
}

type R<T = ()> = Result<T, IcedError>;

/// Emits the kernel for `spec` (see the module docs for the ABI and semantics).
pub fn emit_gemm(spec: &GemmSpec) -> Result<Vec<u8>, String> {
    spec.validate()?;
    let single_block = spec.kc() >= spec.k;
    let (a_row, a_k) = if spec.trans_a {
        (4, spec.lda * 4)
    } else {
        (spec.lda * 4, 4)
    };
    let mut e = Emitter {
        a: CodeAssembler::new(64).map_err(|e| e.to_string())?,
        spec,
        isa: spec.isa,
        a_row: a_row as i32,
        a_k: a_k as i32,
        load_c: match (spec.accumulate, single_block) {
            (true, _) => When::Always,
            (false, true) => When::Never,
            (false, false) => When::Flag(FLAG_LOAD_C),
        },
        last: match (
            spec.bias || spec.row_bias || spec.residual || spec.act != Epilogue::None,
            single_block,
        ) {
            (false, _) => When::Never,
            (true, true) => When::Always,
            (true, false) => When::Flag(FLAG_LAST),
        },
    };
    e.function()
        .map_err(|err| format!("gemm: assembler: {err}"))?;
    e.a.assemble(0)
        .map_err(|err| format!("gemm: assembler: {err}"))
}

impl Emitter<'_> {
    fn function(&mut self) -> R {
        let (m, k, kc) = (
            self.spec.m as i32,
            self.spec.k as i32,
            self.spec.kc() as i32,
        );
        let mut exit = self.a.create_label();
        let mut k_loop = self.a.create_label();
        let mut row_loop = self.a.create_label();
        let mut tails = self.a.create_label();
        let mut k_next = self.a.create_label();
        for r in SAVED {
            self.a.push(r)?;
        }
        self.a.sub(rsp, 8)?;
        // m_end = min(m_end, m); nothing to do when m_begin >= m_end.
        self.a.mov(SCRATCH, m as i64)?;
        self.a.cmp(M_END, SCRATCH)?;
        self.a.cmova(M_END, SCRATCH)?;
        self.a.cmp(ROW, M_END)?;
        self.a.jae(exit)?;
        self.a.mov(qword_ptr(rsp), ROW)?;
        self.a.xor(K0, K0)?;

        self.a.set_label(&mut k_loop)?;
        // kc = min(KC, k - k0).
        self.a.mov(KC, k as i64)?;
        self.a.sub(KC, K0)?;
        self.a.mov(SCRATCH, kc as i64)?;
        self.a.cmp(KC, SCRATCH)?;
        self.a.cmova(KC, SCRATCH)?;
        if matches!(self.load_c, When::Flag(_)) || matches!(self.last, When::Flag(_)) {
            // FLAGS = (k0 != 0 ? LOAD_C : 0) | (k0 + kc == k ? LAST : 0).
            self.a.xor(FLAGS, FLAGS)?;
            self.a.xor(SCRATCH, SCRATCH)?;
            self.a.test(K0, K0)?;
            self.a.setne(bl)?;
            self.a.or(FLAGS, SCRATCH)?;
            self.a.lea(SCRATCH, K0 + KC)?;
            self.a.cmp(SCRATCH, k)?;
            self.a.sete(bl)?;
            self.a.movzx(SCRATCH, bl)?;
            self.a.shl(SCRATCH, 1)?;
            self.a.or(FLAGS, SCRATCH)?;
        }
        self.a.mov(ROW, qword_ptr(rsp))?;

        self.a.set_label(&mut row_loop)?;
        self.a.mov(SCRATCH, M_END)?;
        self.a.sub(SCRATCH, ROW)?;
        self.a.cmp(SCRATCH, MR as i32)?;
        self.a.jb(tails)?;
        self.sweep(MR)?;
        self.a.add(ROW, MR as i32)?;
        self.a.jmp(row_loop)?;

        // The last 1..MR-1 rows of the range: one specialized sweep per count.
        self.a.set_label(&mut tails)?;
        let counts: Vec<usize> = (1..MR.min(self.spec.m + 1)).collect();
        let mut labels: Vec<CodeLabel> = counts.iter().map(|_| self.a.create_label()).collect();
        for (&r, &l) in counts.iter().zip(&labels) {
            self.a.cmp(SCRATCH, r as i32)?;
            self.a.je(l)?;
        }
        self.a.jmp(k_next)?;
        for (&r, l) in counts.iter().zip(labels.iter_mut()) {
            self.a.set_label(l)?;
            self.sweep(r)?;
            self.a.jmp(k_next)?;
        }

        self.a.set_label(&mut k_next)?;
        self.a.add(K0, KC)?;
        self.a.cmp(K0, k)?;
        self.a.jb(k_loop)?;

        self.a.set_label(&mut exit)?;
        self.a.vzeroupper()?;
        self.a.add(rsp, 8)?;
        for r in SAVED.iter().rev() {
            self.a.pop(*r)?;
        }
        self.a.ret()
    }

    /// Panels per tile for `rows` rows: as many as fill the accumulators (at most 8 streams).
    fn group_panels(&self, rows: usize) -> usize {
        let per_panel = rows * NR / self.isa.lanes();
        (self.isa.accumulators() / per_panel).clamp(1, 8)
    }

    /// All column panels for the `rows` rows starting at ROW, in one K block.
    fn sweep(&mut self, rows: usize) -> R {
        let n = self.spec.n;
        let np = panels(n);
        let group = self.group_panels(rows).min(np);
        let lanes = self.isa.lanes();
        let full_panels = n / NR;
        let uniform = full_panels / group;
        let vectors = |count: usize, first: usize| -> Vec<Vector> {
            let mut v = Vec::new();
            for q in 0..count {
                for h in 0..NR / lanes {
                    let col = (first + q) * NR + h * lanes;
                    if col < n {
                        v.push(Vector {
                            b_disp: (q * self.spec.kc() * NR * 4 + h * lanes * 4) as i32,
                            c_disp: (q * NR * 4 + h * lanes * 4) as i32,
                            lanes: (n - col).min(lanes),
                            masked: n - col < lanes,
                        });
                    }
                }
            }
            v
        };
        if uniform > 0 {
            let step = (group * NR * 4) as i32;
            let mut again = self.a.create_label();
            self.a.xor(COL, COL)?;
            self.a.set_label(&mut again)?;
            self.tile(rows, &vectors(group, 0))?;
            if uniform > 1 {
                self.a.add(COL, step)?;
                self.a.cmp(COL, step * uniform as i32)?;
                self.a.jb(again)?;
            }
        }
        let done = uniform * group;
        if done < np {
            self.a.mov(COL, (done * NR * 4) as i64)?;
            self.tile(rows, &vectors(np - done, done))?;
        }
        Ok(())
    }

    /// One `rows × vectors` tile at (ROW, COL) over the current K block.
    fn tile(&mut self, rows: usize, vecs: &[Vector]) -> R {
        let nv = vecs.len();
        let (kc, a_row, a_k) = (self.spec.kc() as i32, self.a_row, self.a_k);
        // A_PTR = a + ROW*a_row + K0*a_k; B_PTR = b + (K0/kc)*panels*kc*64 + (COL/64)*kc*64
        // = b + K0*panels*64 + COL*kc (see pack_b).
        if self.spec.trans_a {
            self.a.lea(A_PTR, ROW * 4)?;
        } else {
            self.a.imul_3(A_PTR, ROW, a_row)?;
        }
        self.a.imul_3(SCRATCH, K0, a_k)?;
        self.a.add(A_PTR, SCRATCH)?;
        self.a.add(A_PTR, A_BASE)?;
        self.a.imul_3(B_PTR, COL, kc)?;
        self.a
            .imul_3(SCRATCH, K0, (panels(self.spec.n) * NR * 4) as i32)?;
        self.a.add(B_PTR, SCRATCH)?;
        self.a.add(B_PTR, B_BASE)?;
        for acc in 0..rows * nv {
            self.zero(acc)?;
        }

        let mut unrolled = self.a.create_label();
        let mut single = self.a.create_label();
        let mut rest = self.a.create_label();
        let mut done = self.a.create_label();
        self.a.mov(COUNT, KC)?;
        self.a.shr(COUNT, 2)?;
        self.a.jz(rest)?;
        self.a.set_label(&mut unrolled)?;
        for kk in 0..4 {
            self.k_step(rows, vecs, kk)?;
            if rows >= 4 {
                // One line of each panel per k step, B_PREFETCH bytes ahead; past the end of a
                // panel's K block this is the next panel's (see pack_b). Prefetches never fault.
                for vec in vecs.iter().filter(|v| v.b_disp % 64 == 0) {
                    let at = B_PTR + (vec.b_disp + B_PREFETCH + kk * 64);
                    self.a.prefetcht0(byte_ptr(at))?;
                }
            }
        }
        self.a.add(A_PTR, 4 * a_k)?;
        self.a.add(B_PTR, (4 * NR * 4) as i32)?;
        self.a.dec(COUNT)?;
        self.a.jnz(unrolled)?;
        self.a.set_label(&mut rest)?;
        self.a.mov(COUNT, KC)?;
        self.a.and(COUNT, 3)?;
        self.a.jz(done)?;
        self.a.set_label(&mut single)?;
        self.k_step(rows, vecs, 0)?;
        self.a.add(A_PTR, a_k)?;
        self.a.add(B_PTR, (NR * 4) as i32)?;
        self.a.dec(COUNT)?;
        self.a.jnz(single)?;
        self.a.set_label(&mut done)?;
        self.epilogue(rows, vecs)
    }

    /// One k step (`kk` steps past A_PTR/B_PTR) of a tile: rank-1 update of the accumulators.
    fn k_step(&mut self, rows: usize, vecs: &[Vector], kk: i32) -> R {
        let nv = vecs.len();
        let accs = rows * nv;
        let (a_row, a_k) = (self.a_row, self.a_k);
        let a_at = |t: usize| A_PTR + (t as i32 * a_row + kk * a_k);
        let b_at = |v: &Vector| B_PTR + (v.b_disp + kk * (NR * 4) as i32);
        if accs + nv + 2 <= self.isa.regs() {
            // B in registers, A broadcast one row at a time.
            for (v, vec) in vecs.iter().enumerate() {
                self.load(accs + v, b_at(vec))?;
            }
            for t in 0..rows {
                let bc = accs + nv + t % 2;
                self.broadcast(bc, a_at(t))?;
                for v in 0..nv {
                    self.fma(t * nv + v, accs + v, bc)?;
                }
            }
        } else {
            // A rows broadcast into registers, B streamed one vector at a time.
            for t in 0..rows {
                self.broadcast(accs + t, a_at(t))?;
            }
            for (v, vec) in vecs.iter().enumerate() {
                if rows == 1 {
                    self.fma_mem(v, accs, b_at(vec))?;
                    continue;
                }
                let b = accs + rows;
                self.load(b, b_at(vec))?;
                for t in 0..rows {
                    self.fma(t * nv + v, accs + t, b)?;
                }
            }
        }
        Ok(())
    }

    /// Jumps to a fresh label when a run-time condition is false; returns it (to be set after
    /// the guarded code) or `None` when the step is unconditional.
    fn guard(&mut self, when: When) -> R<Option<CodeLabel>> {
        match when {
            When::Flag(bit) => {
                let skip = self.a.create_label();
                self.a.test(FLAGS, bit)?;
                self.a.jz(skip)?;
                Ok(Some(skip))
            }
            _ => Ok(None),
        }
    }

    fn end_guard(&mut self, label: Option<CodeLabel>) -> R {
        match label {
            Some(mut l) => self.a.set_label(&mut l),
            None => Ok(()),
        }
    }

    /// C accumulation, bias and activation in registers, then the (masked) stores.
    fn epilogue(&mut self, rows: usize, vecs: &[Vector]) -> R {
        let nv = vecs.len();
        let top = self.isa.regs();
        // Above every accumulator; `top - 1` is the AVX2 mask register.
        let (tmp, lo, hi) = (top - 2, top - 3, top - 4);
        let ldc = (self.spec.ldc * 4) as i32;
        // C_PTR = c + ROW*ldc*4 + COL.
        self.a.imul_3(C_PTR, ROW, ldc)?;
        self.a.add(C_PTR, C_BASE)?;
        self.a.add(C_PTR, COL)?;
        if let Some(partial) = vecs.iter().find(|v| v.masked) {
            self.set_mask(partial.lanes)?;
        }
        let c_at = |t: usize, v: &Vector| C_PTR + (t as i32 * ldc + v.c_disp);

        if self.load_c != When::Never {
            let skip = self.guard(self.load_c)?;
            for (v, vec) in vecs.iter().enumerate() {
                for t in 0..rows {
                    let acc = t * nv + v;
                    if vec.masked {
                        self.load_masked(tmp, c_at(t, vec))?;
                        self.add(acc, tmp)?;
                    } else {
                        self.add_mem(acc, c_at(t, vec))?;
                    }
                }
            }
            self.end_guard(skip)?;
        }
        if self.last != When::Never {
            let skip = self.guard(self.last)?;
            if self.spec.bias {
                for (v, vec) in vecs.iter().enumerate() {
                    let at = BIAS + COL + vec.c_disp;
                    if vec.masked {
                        self.load_masked(tmp, at)?;
                    } else {
                        self.load(tmp, at)?;
                    }
                    for t in 0..rows {
                        self.add(t * nv + v, tmp)?;
                    }
                }
            }
            if self.spec.row_bias {
                for t in 0..rows {
                    self.broadcast(tmp, BIAS + ROW * 4 + (t as i32 * 4))?;
                    for v in 0..nv {
                        self.add(t * nv + v, tmp)?;
                    }
                }
            }
            if self.spec.residual {
                // A_PTR is free in the epilogue (each tile recomputes it): residual - c.
                self.a.mov(A_PTR, qword_ptr(rsp + RESIDUAL_ARG))?;
                self.a.sub(A_PTR, C_BASE)?;
                for (v, vec) in vecs.iter().enumerate() {
                    for t in 0..rows {
                        let at = C_PTR + A_PTR + (t as i32 * ldc + vec.c_disp);
                        let acc = t * nv + v;
                        if vec.masked {
                            self.load_masked(tmp, at)?;
                            self.add(acc, tmp)?;
                        } else {
                            self.add_mem(acc, at)?;
                        }
                    }
                }
            }
            match self.spec.act {
                Epilogue::None => {}
                Epilogue::Relu => {
                    self.zero(lo)?;
                    for acc in 0..rows * nv {
                        self.max(acc, lo)?;
                    }
                }
                Epilogue::Clip { lo: l, hi: h } => {
                    self.splat(lo, l)?;
                    self.splat(hi, h)?;
                    for acc in 0..rows * nv {
                        self.max(acc, lo)?;
                        self.min(acc, hi)?;
                    }
                }
            }
            self.end_guard(skip)?;
        }
        for (v, vec) in vecs.iter().enumerate() {
            for t in 0..rows {
                if vec.masked {
                    self.store_masked(c_at(t, vec), t * nv + v)?;
                } else {
                    self.store(c_at(t, vec), t * nv + v)?;
                }
            }
        }
        Ok(())
    }

    // Vector instructions on register numbers, for either instruction set.

    fn vmem(&self, at: AsmMemoryOperand) -> AsmMemoryOperand {
        match self.isa {
            Isa::Avx2 => ymmword_ptr(at),
            Isa::Avx512 => zmmword_ptr(at),
        }
    }

    fn zero(&mut self, r: usize) -> R {
        match self.isa {
            Isa::Avx2 => self.a.vxorps(YMM[r], YMM[r], YMM[r]),
            Isa::Avx512 => self.a.vpxord(ZMM[r], ZMM[r], ZMM[r]),
        }
    }

    fn load(&mut self, r: usize, at: AsmMemoryOperand) -> R {
        let at = self.vmem(at);
        match self.isa {
            Isa::Avx2 => self.a.vmovups(YMM[r], at),
            Isa::Avx512 => self.a.vmovups(ZMM[r], at),
        }
    }

    fn store(&mut self, at: AsmMemoryOperand, r: usize) -> R {
        let at = self.vmem(at);
        match self.isa {
            Isa::Avx2 => self.a.vmovups(at, YMM[r]),
            Isa::Avx512 => self.a.vmovups(at, ZMM[r]),
        }
    }

    fn broadcast(&mut self, r: usize, at: AsmMemoryOperand) -> R {
        match self.isa {
            Isa::Avx2 => self.a.vbroadcastss(YMM[r], dword_ptr(at)),
            Isa::Avx512 => self.a.vbroadcastss(ZMM[r], dword_ptr(at)),
        }
    }

    /// `acc += x * y`.
    fn fma(&mut self, acc: usize, x: usize, y: usize) -> R {
        match self.isa {
            Isa::Avx2 => self.a.vfmadd231ps(YMM[acc], YMM[x], YMM[y]),
            Isa::Avx512 => self.a.vfmadd231ps(ZMM[acc], ZMM[x], ZMM[y]),
        }
    }

    /// `acc += x * [at]`.
    fn fma_mem(&mut self, acc: usize, x: usize, at: AsmMemoryOperand) -> R {
        let at = self.vmem(at);
        match self.isa {
            Isa::Avx2 => self.a.vfmadd231ps(YMM[acc], YMM[x], at),
            Isa::Avx512 => self.a.vfmadd231ps(ZMM[acc], ZMM[x], at),
        }
    }

    fn add(&mut self, acc: usize, x: usize) -> R {
        match self.isa {
            Isa::Avx2 => self.a.vaddps(YMM[acc], YMM[acc], YMM[x]),
            Isa::Avx512 => self.a.vaddps(ZMM[acc], ZMM[acc], ZMM[x]),
        }
    }

    fn add_mem(&mut self, acc: usize, at: AsmMemoryOperand) -> R {
        let at = self.vmem(at);
        match self.isa {
            Isa::Avx2 => self.a.vaddps(YMM[acc], YMM[acc], at),
            Isa::Avx512 => self.a.vaddps(ZMM[acc], ZMM[acc], at),
        }
    }

    /// `acc = max(lo, acc)`: `vmaxps` returns its second source when either is NaN, so a NaN
    /// in `acc` survives (likewise [`Self::min`]).
    fn max(&mut self, acc: usize, lo: usize) -> R {
        match self.isa {
            Isa::Avx2 => self.a.vmaxps(YMM[acc], YMM[lo], YMM[acc]),
            Isa::Avx512 => self.a.vmaxps(ZMM[acc], ZMM[lo], ZMM[acc]),
        }
    }

    fn min(&mut self, acc: usize, hi: usize) -> R {
        match self.isa {
            Isa::Avx2 => self.a.vminps(YMM[acc], YMM[hi], YMM[acc]),
            Isa::Avx512 => self.a.vminps(ZMM[acc], ZMM[hi], ZMM[acc]),
        }
    }

    /// Enables lanes `0..lanes` for the masked moves: the top register (AVX2: bytes 0xFF
    /// sign-extended to dwords) or `k1` (AVX-512).
    fn set_mask(&mut self, lanes: usize) -> R {
        match self.isa {
            Isa::Avx2 => {
                self.a.mov(SCRATCH, (1u64 << (8 * lanes)) - 1)?;
                self.a.vmovq(xmm15, SCRATCH)?;
                self.a.vpmovsxbd(ymm15, xmm15)
            }
            Isa::Avx512 => {
                self.a.mov(ebx, (1u32 << lanes) - 1)?;
                self.a.kmovw(k1, ebx)
            }
        }
    }

    fn load_masked(&mut self, r: usize, at: AsmMemoryOperand) -> R {
        match self.isa {
            Isa::Avx2 => self.a.vmaskmovps(YMM[r], ymm15, ymmword_ptr(at)),
            Isa::Avx512 => self.a.vmovups(ZMM[r].k1().z(), zmmword_ptr(at)),
        }
    }

    fn store_masked(&mut self, at: AsmMemoryOperand, r: usize) -> R {
        match self.isa {
            Isa::Avx2 => self.a.vmaskmovps(ymmword_ptr(at), ymm15, YMM[r]),
            Isa::Avx512 => self.a.vmovups(zmmword_ptr(at).k1(), ZMM[r]),
        }
    }

    /// `r = splat(x)` from an immediate, without touching memory.
    fn splat(&mut self, r: usize, x: f32) -> R {
        self.a.mov(ebx, x.to_bits())?;
        match self.isa {
            Isa::Avx2 => {
                self.a.vmovd(XMM[r], ebx)?;
                self.a.vbroadcastss(YMM[r], XMM[r])
            }
            Isa::Avx512 => self.a.vpbroadcastd(ZMM[r], ebx),
        }
    }
}
