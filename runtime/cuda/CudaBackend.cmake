# The CUDA backend of moe-runtime, included by runtime/CMakeLists.txt when
# MOE_ENABLE_CUDA is on. The .cu files are compiled into an object library
# whose objects go into moe_runtime, so the one runtime library carries both
# backends.

# One architecture by default keeps nvcc time moderate: sm_90 (H100/H200)
# plus its PTX, which newer GPUs can JIT (the code needs no sm_90a-only
# feature, and sm_90a PTX would not JIT elsewhere).
# CMAKE_CUDA_ARCHITECTURES, when given, wins (e.g. "80;90").
set(MOE_CUDA_ARCHITECTURES "90" CACHE STRING
  "CUDA architectures of the backend when CMAKE_CUDA_ARCHITECTURES is unset")
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
  set(CMAKE_CUDA_ARCHITECTURES ${MOE_CUDA_ARCHITECTURES})
endif()

enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
if(NOT TARGET CUDA::cublas OR NOT TARGET CUDA::cublasLt)
  message(FATAL_ERROR "MOE_ENABLE_CUDA needs cuBLAS and cuBLASLt "
    "(or configure with -DMOE_ENABLE_CUDA=OFF)")
endif()
if(CUDAToolkit_VERSION VERSION_LESS 12.5)
  # cublasGemmGroupedBatchedEx (grouped expert GEMMs) appeared in 12.5.
  message(FATAL_ERROR "the CUDA backend needs CUDA 12.5 or newer (found "
    "${CUDAToolkit_VERSION}); configure with -DMOE_ENABLE_CUDA=OFF to skip it")
endif()

add_library(moe_runtime_cuda OBJECT
  ${CMAKE_CURRENT_LIST_DIR}/CudaBackend.cu
  ${CMAKE_CURRENT_LIST_DIR}/Elementwise.cu
  ${CMAKE_CURRENT_LIST_DIR}/Routing.cu
  ${CMAKE_CURRENT_LIST_DIR}/FusedRoute.cu
  ${CMAKE_CURRENT_LIST_DIR}/Selection.cu
  ${CMAKE_CURRENT_LIST_DIR}/Dispatch.cu
  ${CMAKE_CURRENT_LIST_DIR}/Hierarchy.cu
  ${CMAKE_CURRENT_LIST_DIR}/Sequence.cu
  ${CMAKE_CURRENT_LIST_DIR}/Loss.cu
  ${CMAKE_CURRENT_LIST_DIR}/Optimizer.cu
)
target_include_directories(moe_runtime_cuda PRIVATE ${MOE_REPO_ROOT})
target_link_libraries(moe_runtime_cuda PRIVATE CUDA::cudart CUDA::cublas)
set_target_properties(moe_runtime_cuda PROPERTIES
  CUDA_STANDARD 17
  CUDA_STANDARD_REQUIRED ON
  POSITION_INDEPENDENT_CODE ON
  CUDA_RUNTIME_LIBRARY Shared)
target_compile_options(moe_runtime_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall>)

# The real cudaBackendCompiled/cudaDeviceCount/createCudaBackend live in
# CudaBackend.cu; Backend.cpp drops its stubs.
target_compile_definitions(moe_runtime PRIVATE MOE_RUNTIME_HAS_CUDA)
target_link_libraries(moe_runtime PRIVATE moe_runtime_cuda)
target_link_libraries(moe_runtime PUBLIC CUDA::cudart CUDA::cublas CUDA::cublasLt)

# NCCL (collectives) is optional here: found through NCCL_ROOT (e.g. the
# site-packages/nvidia/nccl of the CUDA Python wheels) or the toolkit.
set(NCCL_ROOT "$ENV{NCCL_ROOT}" CACHE PATH "Prefix of an NCCL installation")
find_path(MOE_NCCL_INCLUDE_DIR nccl.h
  HINTS ${NCCL_ROOT} ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}
  PATH_SUFFIXES include)
find_library(MOE_NCCL_LIBRARY
  NAMES nccl libnccl.so.2
  HINTS ${NCCL_ROOT} ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}
  PATH_SUFFIXES lib lib64)
if(MOE_NCCL_INCLUDE_DIR AND MOE_NCCL_LIBRARY)
  set(MOE_NCCL_FOUND ON CACHE INTERNAL "NCCL headers and library were found")
  if(NOT TARGET moe::nccl)
    add_library(moe::nccl UNKNOWN IMPORTED)
    set_target_properties(moe::nccl PROPERTIES
      IMPORTED_LOCATION ${MOE_NCCL_LIBRARY}
      INTERFACE_INCLUDE_DIRECTORIES ${MOE_NCCL_INCLUDE_DIR})
  endif()
  message(STATUS "NCCL: ${MOE_NCCL_LIBRARY}")
else()
  set(MOE_NCCL_FOUND OFF CACHE INTERNAL "NCCL headers and library were found")
  message(STATUS "NCCL: not found (set NCCL_ROOT)")
endif()
