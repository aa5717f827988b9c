// (A^T)(C^T) = matmul(A, C, transpose_a, transpose_b): the GEMM reads its operands
// transposed instead of copies.
// RUN: simplify
// CHECK: %0 = "gs.matmul"(%a, %c) {transpose_a = true, transpose_b = true}
// CHECK: return %0 : tensor<3x5xf32>
// CHECK-NOT: gs.transpose
func.func @matmul_transposes(%a: tensor<4x3xf32>, %c: tensor<5x4xf32>) -> (tensor<3x5xf32>) {
  %0 = "gs.transpose"(%a) {perm = array<i64: 1, 0>} : (tensor<4x3xf32>) -> tensor<3x4xf32> loc("model.py":2:5)
  %1 = "gs.transpose"(%c) {perm = array<i64: 1, 0>} : (tensor<5x4xf32>) -> tensor<4x5xf32> loc("model.py":2:5)
  %2 = "gs.matmul"(%0, %1) {transpose_a = false, transpose_b = false} : (tensor<3x4xf32>, tensor<4x5xf32>) -> tensor<3x5xf32> loc("model.py":2:5)
  return %2 : tensor<3x5xf32>
} loc("model.py":1:1)
