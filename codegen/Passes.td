//===- Passes.td - Code generation passes ------------------*- tablegen -*-===//
//
// The lowering of planned training graphs to EmitC. moe-translate's
// --moe-to-cpp / --moe-to-cuda run it and print the result with MLIR's C++
// emitter; moe-opt exposes it for tests.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_CODEGEN_PASSES_TD
#define MOE_CODEGEN_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertMoEToEmitC : Pass<"convert-moe-to-emitc", "mlir::ModuleOp"> {
  let summary = "Lower planned moe functions to EmitC calls of the step ABI";
  let description = [{
    Turns every function that moe-plan-buffers planned (`moe.arena_bytes`)
    into an `extern "C"` `emitc.func` taking one
    `moe::rt::step::Context *` (runtime/step/Step.h). Arguments become
    `argument<T>(ctx, i)`, every tensor a pointer into the arena at the
    offset the planner chose, every op one `emitc.call_opaque` of the
    runtime function that runs it, with its sizes as literals, and the
    results `result(ctx, i, ptr)` calls. Views (`tensor.collapse_shape` /
    `expand_shape`) are the same pointer; `moe.adam_update` writes its
    parameter and moments in place.

    ```mlir
    %2 = moe.residual %0, %1 {moe.offsets = array<i64: 2880>} : tensor<2x5x8xf32>
    ```
    becomes
    ```mlir
    %5 = emitc.call_opaque "moe::rt::step::arena"(%ctx) {args = [0 : index, 2880 : i64], template_args = [f32]} : (...) -> !emitc.ptr<f32>
    emitc.call_opaque "moe::rt::step::add"(%ctx, %3, %4, %5) {args = [0 : index, 1 : index, 2 : index, 3 : index, 80 : i64]} : (...) -> ()
    ```

    The emitted code is the same for every backend except where the target
    says otherwise: the CUDA target gives the large GEMMs (experts, LSTMs,
    output layer) the chosen precision; the router always runs in f32.
    Functions without a buffer plan, ops without a lowering and non-splat
    constants are errors that name the op.
  }];
  let dependentDialects = ["mlir::emitc::EmitCDialect"];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"cpu\"",
           "Backend the code is for: cpu or cuda">,
    Option<"gemmPrecision", "gemm-precision", "std::string",
           /*default=*/"\"f32\"",
           "Precision of the large GEMMs on CUDA: f32, tf32 or bf16 "
           "(the CPU always computes in f32)">,
  ];
}

#endif // MOE_CODEGEN_PASSES_TD
