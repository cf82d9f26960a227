//===- Pipelines.cpp - The training and inference pass pipelines ----------===//
//
// --moe-train-pipeline: model -> decomposed, differentiated, optimized
// training step. --moe-inference-pipeline: model -> evaluation graph.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "passes/PrimitiveBuilder.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::moe;

namespace {

enum class OptimizerKind { Adam, None };

/// The router's gate GEMMs: f32, or TF32 tensor cores on GPUs.
enum class RouterPrecision { F32, TF32 };
constexpr const char *kRouterPrecisionHelp =
    "Precision of the router's gate GEMMs (moe-decompose, "
    "moe-expand-hierarchy): the routing after the logits stays f32";
llvm::cl::ValuesClass routerPrecisionValues() {
  return llvm::cl::values(
      clEnumValN(RouterPrecision::F32, "f32", "f32 (default)"),
      clEnumValN(RouterPrecision::TF32, "tf32",
                 "TF32 tensor cores on GPUs (the CPU computes in f32)"));
}
const char *routerPrecisionName(RouterPrecision precision) {
  return precision == RouterPrecision::TF32 ? "tf32" : "f32";
}

struct TrainPipelineOptions : public PassPipelineOptions<TrainPipelineOptions> {
  Option<OptimizerKind> optimizer{
      *this, "optimizer",
      llvm::cl::desc("What the training step does with the gradients"),
      llvm::cl::init(OptimizerKind::Adam),
      llvm::cl::values(
          clEnumValN(OptimizerKind::Adam, "adam",
                     "Adam: update the parameters and moments (default)"),
          clEnumValN(OptimizerKind::None, "none",
                     "return the gradients (for gradient checks)"))};
  Option<bool> dataParallel{
      *this, "data-parallel",
      llvm::cl::desc("Train on any number of ranks (mpirun): the loss of "
                     "the global batch, gradients summed over the ranks "
                     "(moe-partition, moe-sync-gradients)"),
      llvm::cl::init(false)};
  Option<bool> expertParallel{
      *this, "expert-parallel",
      llvm::cl::desc("With data-parallel (implied): shard the experts over "
                     "the ranks and exchange the tokens routed to them "
                     "(moe-partition{expert-parallel})"),
      llvm::cl::init(false)};
  Option<std::string> sparseGradients{
      *this, "sparse-gradients",
      llvm::cl::desc("Row-sparse gradients and lazy Adam for the embedding "
                     "and the sampled softmax (moe-sparse-gradients): auto "
                     "(where faster), on, off"),
      llvm::cl::init("auto")};
  Option<int64_t> sparseGradientRanks{
      *this, "sparse-gradient-ranks",
      llvm::cl::desc("With data-parallel: the ranks the sparse-gradients=auto "
                     "rule sizes the global batch for (at most a quarter of "
                     "the rows touched by all ranks' batches)"),
      llvm::cl::init(1)};
  Option<bool> eval{
      *this, "eval",
      llvm::cl::desc("Add the evaluation copy <model>_eval (inference mode) "
                     "that test perplexity and generation run"),
      llvm::cl::init(true)};
  Option<bool> decodeStep{
      *this, "decode-step",
      llvm::cl::desc("Add <model>_encode and <model>_decode_step (inference "
                     "mode) for incremental decoding, where the model allows "
                     "it (moe-add-decode-step{skip-unsupported})"),
      llvm::cl::init(true)};
  Option<float> lr{*this, "lr",
                   llvm::cl::desc("Peak learning rate (after warm-up)"),
                   llvm::cl::init(1.0e-3f)};
  Option<float> beta1{*this, "beta1", llvm::cl::desc("Adam beta1"),
                      llvm::cl::init(0.9f)};
  Option<float> beta2{*this, "beta2", llvm::cl::desc("Adam beta2"),
                      llvm::cl::init(0.999f)};
  Option<float> eps{*this, "eps", llvm::cl::desc("Adam epsilon"),
                    llvm::cl::init(1.0e-8f)};
  Option<float> weightDecay{
      *this, "weight-decay",
      llvm::cl::desc("Decoupled weight decay (0 disables)"),
      llvm::cl::init(0.0f)};
  Option<int64_t> warmupSteps{
      *this, "warmup-steps",
      llvm::cl::desc("Steps of linear learning-rate warm-up"),
      llvm::cl::init(200)};
  Option<int64_t> constantSteps{
      *this, "constant-steps",
      llvm::cl::desc("Steps at the peak rate before 1/sqrt decay"),
      llvm::cl::init(200)};
  Option<double> thresholdCapacity{
      *this, "threshold-capacity",
      llvm::cl::desc("Assignment slots of the threshold masks of the "
                     "evaluation copy, as a multiple of what the batchwise "
                     "masks keep in training (moe-decompose, "
                     "moe-expand-hierarchy)"),
      llvm::cl::init(2.0)};
  Option<RouterPrecision> routerPrecision{
      *this, "router-precision", llvm::cl::desc(kRouterPrecisionHelp),
      llvm::cl::init(RouterPrecision::F32), routerPrecisionValues()};
};

struct InferencePipelineOptions
    : public PassPipelineOptions<InferencePipelineOptions> {
  Option<double> thresholdCapacity{
      *this, "threshold-capacity",
      llvm::cl::desc("Assignment slots of the threshold masks, as a "
                     "multiple of what the batchwise masks keep in training "
                     "(moe-decompose, moe-expand-hierarchy)"),
      llvm::cl::init(2.0)};
  Option<RouterPrecision> routerPrecision{
      *this, "router-precision", llvm::cl::desc(kRouterPrecisionHelp),
      llvm::cl::init(RouterPrecision::F32), routerPrecisionValues()};
};

void addOptimizer(OpPassManager &pm, const TrainPipelineOptions &options);

void buildTrainPipeline(OpPassManager &pm,
                        const TrainPipelineOptions &options) {
  if (options.eval)
    pm.addPass(createAddEval());
  if (options.decodeStep) {
    AddDecodeStepOptions decodeStep;
    decodeStep.skipUnsupported = true;
    pm.addPass(createAddDecodeStep(decodeStep));
  }
  // The evaluation copy (moe.inference) lowers its batchwise layers to
  // threshold masks of this capacity.
  DecomposeOptions decompose;
  decompose.thresholdCapacity = options.thresholdCapacity;
  // Data-parallel batchwise masks rank the combined batch of all ranks.
  decompose.combinedBatch = options.dataParallel || options.expertParallel;
  decompose.routerPrecision = routerPrecisionName(options.routerPrecision);
  pm.addNestedPass<func::FuncOp>(createDecompose(decompose));
  ExpandHierarchyOptions hierarchy;
  hierarchy.thresholdCapacity = options.thresholdCapacity;
  hierarchy.combinedBatch = decompose.combinedBatch;
  hierarchy.routerPrecision = routerPrecisionName(options.routerPrecision);
  pm.addNestedPass<func::FuncOp>(createExpandHierarchy(hierarchy));
  pm.addNestedPass<func::FuncOp>(createFuseRouting());
  bool partitioned = options.dataParallel || options.expertParallel;
  if (partitioned) {
    PartitionOptions partition;
    partition.expertParallel = options.expertParallel;
    pm.addPass(createPartition(partition));
  }
  AutodiffOptions autodiff;
  autodiff.requireModel = true;
  pm.addPass(createAutodiff(autodiff));
  if (partitioned)
    pm.addPass(createSyncGradients());
  if (options.optimizer == OptimizerKind::Adam)
    addOptimizer(pm, options);
  pm.addPass(createCSEPass());
  pm.addNestedPass<func::FuncOp>(createMarkEqualSegments());
  pm.addNestedPass<func::FuncOp>(createPlanBuffers());
}

void addOptimizer(OpPassManager &pm, const TrainPipelineOptions &options) {
  OptimizerOptions optimizer;
  optimizer.learningRate = options.lr;
  optimizer.beta1 = options.beta1;
  optimizer.beta2 = options.beta2;
  optimizer.epsilon = options.eps;
  optimizer.weightDecay = options.weightDecay;
  optimizer.warmupSteps = options.warmupSteps;
  optimizer.constantSteps = options.constantSteps;
  pm.addPass(createOptimizer(optimizer));
  SparseGradientsOptions sparse;
  sparse.mode = options.sparseGradients;
  sparse.ranks = options.sparseGradientRanks;
  pm.addPass(createSparseGradients(sparse));
}

void buildInferencePipeline(OpPassManager &pm,
                            const InferencePipelineOptions &options) {
  DecomposeOptions decompose;
  decompose.inference = true;
  decompose.thresholdCapacity = options.thresholdCapacity;
  decompose.routerPrecision = routerPrecisionName(options.routerPrecision);
  pm.addNestedPass<func::FuncOp>(createDecompose(decompose));
  ExpandHierarchyOptions hierarchy;
  hierarchy.inference = true;
  hierarchy.thresholdCapacity = options.thresholdCapacity;
  hierarchy.routerPrecision = routerPrecisionName(options.routerPrecision);
  pm.addNestedPass<func::FuncOp>(createExpandHierarchy(hierarchy));
  pm.addPass(createCSEPass());
  pm.addNestedPass<func::FuncOp>(createMarkEqualSegments());
  pm.addNestedPass<func::FuncOp>(createPlanBuffers());
}

/// PassPipelineRegistration<Options> that also rejects a non-positive
/// threshold-capacity when the options are parsed, with one error rather
/// than one per function from each pass.
template <typename Options>
void registerPipeline(StringRef arg, StringRef description,
                      void (*builder)(OpPassManager &, const Options &)) {
  registerPassPipeline(
      arg, description,
      [builder](OpPassManager &pm, StringRef text,
                function_ref<LogicalResult(const Twine &)> errorHandler) {
        Options options;
        if (failed(options.parseFromString(text)))
          return failure();
        std::string error =
            thresholdCapacityFactorError(options.thresholdCapacity);
        if (!error.empty())
          return errorHandler(error);
        builder(pm, options);
        return success();
      },
      [](function_ref<void(const mlir::detail::PassOptions &)> optHandler) {
        optHandler(Options());
      });
}

} // namespace

void mlir::moe::registerMoEPipelines() {
  registerPipeline<TrainPipelineOptions>(
      "moe-train-pipeline",
      "Lower a model to a training step: decompose layers, fuse routing, "
      "derive the backward pass, add Adam and the learning-rate schedule, "
      "plan buffers",
      buildTrainPipeline);
  registerPipeline<InferencePipelineOptions>(
      "moe-inference-pipeline",
      "Lower a model for evaluation: no gating noise, threshold masks for "
      "batchwise-trained layers, no dropout, full softmax, no backward pass",
      buildInferencePipeline);
}
