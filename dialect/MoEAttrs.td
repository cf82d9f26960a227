//===- MoEAttrs.td - Enums and attributes of the moe dialect -*- tablegen -*-===//

#ifndef MOE_DIALECT_MOEATTRS_TD
#define MOE_DIALECT_MOEATTRS_TD

include "dialect/MoEDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def MoE_GatingKind : I32EnumAttr<"GatingKind", "how the gate picks experts", [
    // Eq. 2: dense softmax over all experts (small n, tests).
    I32EnumAttrCase<"softmax", 0>,
    // Eq. 3-4: keep the top k gate logits, softmax over them.
    I32EnumAttrCase<"top_k", 1>,
    // Top k of x W_g + N(0,1) softplus(x W_noise), noise in training only.
    I32EnumAttrCase<"noisy_top_k", 2>,
    // Appendix A: top m = k|X|/n tokens per expert over the batch, with
    // learned thresholds for inference.
    I32EnumAttrCase<"batchwise", 3>,
    // Eq. 7: keep expert i when its gate probability exceeds the learned
    // threshold T_i.
    I32EnumAttrCase<"threshold", 4>,
  ]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}
def MoE_GatingAttr : EnumAttr<MoE_Dialect, MoE_GatingKind, "gating"> {
  let assemblyFormat = "`<` $value `>`";
}

def MoE_ExpertKind : I32EnumAttr<"ExpertKind", "expert network kind", [
    // Paper 5.1: one d x d_out matrix, no non-linearity.
    I32EnumAttrCase<"linear", 0>,
    // Paper 5.2: d -> hidden -> d_out feed-forward network.
    I32EnumAttrCase<"ffn", 1>,
  ]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

def MoE_Activation : I32EnumAttr<"Activation", "element-wise activation", [
    I32EnumAttrCase<"none", 0>,
    I32EnumAttrCase<"relu", 1>,
    I32EnumAttrCase<"sigmoid", 2>,
    I32EnumAttrCase<"tanh", 3>,
  ]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}
def MoE_ActivationAttr : EnumAttr<MoE_Dialect, MoE_Activation, "activation"> {
  let assemblyFormat = "`<` $value `>`";
}

def MoE_InitKind : I32EnumAttr<"InitKind", "parameter initializer", [
    I32EnumAttrCase<"zeros", 0>,
    // Every element equals `scale`.
    I32EnumAttrCase<"constant", 1>,
    // N(0, scale^2).
    I32EnumAttrCase<"normal", 2>,
    // U(-scale, scale).
    I32EnumAttrCase<"uniform", 3>,
    // U(-a, a) with a = scale * sqrt(6 / (fan_in + fan_out)) of the last two
    // dimensions (per expert for stacked expert weights).
    I32EnumAttrCase<"glorot_uniform", 4>,
  ]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

//===----------------------------------------------------------------------===//
// Attribute definitions
//===----------------------------------------------------------------------===//

class MoE_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<MoE_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

/// An f64 parameter written as a plain number. Stored as APFloat, which
/// attribute storage can hash, unlike double.
class MoE_F64Parameter<string desc, string default = "0.0">
    : AttrOrTypeParameter<"::llvm::APFloat", desc> {
  let comparator = "$_lhs.bitwiseIsEqual($_rhs)";
  let defaultValue = "::llvm::APFloat(" # default # ")";
  let parser = [{ [&]() -> ::mlir::FailureOr<::llvm::APFloat> {
    double value;
    if ($_parser.parseFloat(value))
      return ::mlir::failure();
    return ::llvm::APFloat(value);
  }() }];
  let printer = "$_printer << $_self.convertToDouble()";
}

def MoE_ExpertAttr : MoE_Attr<"Expert", "expert"> {
  let summary = "the shape of each expert network";
  let description = [{
    `#moe.expert<linear>` is one weight matrix per expert (paper 5.1);
    `#moe.expert<ffn, hidden = 2048, act = relu>` is a one-hidden-layer
    feed-forward network (paper 5.2).
  }];
  let parameters = (ins
    EnumParameter<MoE_ExpertKind>:$kind,
    DefaultValuedParameter<"int64_t", "0", "hidden width (ffn)">:$hidden,
    DefaultValuedParameter<"::mlir::moe::Activation",
                           "::mlir::moe::Activation::relu",
                           "hidden activation (ffn)">:$act
  );
  // A struct, not two optional groups: groups `(`,` `hidden` ...)?` and
  // `(`,` `act` ...)?` would both start with `,`, so the parser would commit
  // to `hidden` after any comma and reject `#moe.expert<linear, act = tanh>`
  // before the verifier could say what is wrong with it.
  let assemblyFormat = [{
    `<` $kind (`,` struct($hidden, $act)^)? `>`
  }];
  let genVerifyDecl = 1;
}

def MoE_LossesAttr : MoE_Attr<"Losses", "losses"> {
  let summary = "weights of the auxiliary balancing losses";
  let description = [{
    Each weight multiplies one auxiliary loss; 0 (the default) turns it off.
    `importance` and `load` are w * CV(v)^2 of the importance and of the
    smooth load estimate (noisy top-k only); `l2_balance` is Eq. 5;
    `batchwise_threshold` is Eq. 8 (batchwise gating only).

    ```mlir
    #moe.losses<importance = 0.1, load = 0.1>
    ```
  }];
  let parameters = (ins
    MoE_F64Parameter<"importance loss weight">:$importance,
    MoE_F64Parameter<"load loss weight">:$load,
    MoE_F64Parameter<"Eq. 5 L2 balance loss weight">:$l2_balance,
    MoE_F64Parameter<"Eq. 8 threshold loss weight">:$batchwise_threshold
  );
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def MoE_InitAttr : MoE_Attr<"Init", "init"> {
  let summary = "how a parameter is initialised";
  let description = [{
    ```mlir
    #moe.init<zeros>
    #moe.init<normal, scale = 0.02>
    #moe.init<glorot_uniform>
    ```
  }];
  let parameters = (ins
    EnumParameter<MoE_InitKind>:$kind,
    MoE_F64Parameter<"stddev, limit, value or gain, by kind", "1.0">:$scale
  );
  let assemblyFormat = "`<` $kind (`,` `scale` `=` $scale^)? `>`";
  let genVerifyDecl = 1;
}

def MoE_ShardAttr : MoE_Attr<"Shard", "shard"> {
  let summary = "a tensor split along its first dimension over a mesh";
  let description = [{
    The encoding of an expert-sharded tensor: the type keeps the global
    shape, and each of the R ranks of the mesh holds the contiguous slice
    [r n / R, (r + 1) n / R) of the first dimension (n / R experts of
    [n, d_in, d_out] expert weights, their gradients and Adam moments).
    R is known only when the graph runs; it must divide n.

    ```mlir
    tensor<512x512x512xf32, #moe.shard<@ranks>>
    ```
  }];
  let parameters = (ins "::mlir::FlatSymbolRefAttr":$mesh);
  let assemblyFormat = "`<` $mesh `>`";
}

#endif // MOE_DIALECT_MOEATTRS_TD
