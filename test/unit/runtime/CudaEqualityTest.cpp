//===- CudaEqualityTest.cpp - PENDING: tests are added with the kernels -----------===//
