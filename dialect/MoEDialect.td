//===- MoEDialect.td - The moe dialect and its op base class -*- tablegen -*-===//
//
// The `moe` dialect describes Sparsely-Gated Mixture-of-Experts models
// (Shazeer et al. 2017) at the level users write them: MoE layers with their
// gating and balancing losses, LSTMs, embeddings, attention and losses.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_MOEDIALECT_TD
#define MOE_DIALECT_MOEDIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def MoE_Dialect : Dialect {
  let name = "moe";
  let cppNamespace = "::mlir::moe";
  let summary = "Sparsely-gated mixture-of-experts models";
  let description = [{
    Model-level operations for Sparsely-Gated Mixture-of-Experts networks.
    Parameters are function arguments tagged with `moe.param` (their name in
    checkpoints) and `moe.init` (how to initialise them); data inputs are
    tagged with `moe.input`. A model function returns its scalar training
    loss.

    ```mlir
    func.func @lm(%ids: tensor<32x20xi32> {moe.input = "tokens"},
                  %table: tensor<10000x512xf32>
                      {moe.param = "embedding",
                       moe.init = #moe.init<uniform, scale = 0.05>}) ...
    ```
  }];
  let useDefaultAttributePrinterParser = 1;
  let hasRegionArgAttrVerify = 1;
  let extraClassDeclaration = [{
    /// Argument attribute naming a parameter in checkpoints and manifests.
    static constexpr ::llvm::StringLiteral kParamAttrName = "moe.param";
    /// Argument attribute holding a parameter's #moe.init initializer.
    static constexpr ::llvm::StringLiteral kInitAttrName = "moe.init";
    /// Argument attribute naming a data input ("tokens", "targets").
    static constexpr ::llvm::StringLiteral kInputAttrName = "moe.input";
    /// Argument attribute naming state that a step reads and returns
    /// updated (Adam moments "<param>.adam_m", the step counter; a decode
    /// step's LSTM states and encoder outputs).
    static constexpr ::llvm::StringLiteral kStateAttrName = "moe.state";
    /// Function attribute: lower this function for evaluation (no noise,
    /// threshold masks, no dropout, full softmax), as moe-add-eval marks
    /// the evaluation copy of a model.
    static constexpr ::llvm::StringLiteral kInferenceAttrName =
        "moe.inference";
    /// Function attribute: why moe-add-decode-step{skip-unsupported} left
    /// this model without decode functions. Manifests carry it, so that
    /// moe-run can say why it decodes by re-running the window.
    static constexpr ::llvm::StringLiteral kNoDecodeStepAttrName =
        "moe.no_decode_step";

  private:
    void registerAttributes();
  public:
  }];
}

/// Every tensor an op reads or writes has an element count and a size in
/// bits that fit in int64_t, so the planner, the FLOP counts and code
/// generation can multiply dimensions without overflowing
/// (dialect/VerifierUtils.cpp: verifyTensorSizesFit).
def MoE_TensorSizesFit : NativeOpTrait<"TensorSizesFit"> {
  let cppNamespace = "::mlir::moe";
}

/// Every attribute of an op is one it defines or is named dialect.name, so
/// a misspelt attribute is an error rather than silently ignored
/// (dialect/VerifierUtils.cpp: verifyKnownAttributes).
def MoE_KnownAttributes : NativeOpTrait<"KnownAttributes"> {
  let cppNamespace = "::mlir::moe";
}

/// Base class of every moe op. All moe ops are side-effect free tensor
/// functions (randomness is keyed by the step counter), so they are Pure.
class MoE_Op<string mnemonic, list<Trait> traits = []>
    : Op<MoE_Dialect, mnemonic,
         !listconcat(traits, [Pure, MoE_TensorSizesFit, MoE_KnownAttributes])>;

#endif // MOE_DIALECT_MOEDIALECT_TD
