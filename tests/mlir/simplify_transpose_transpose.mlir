// transpose(transpose(y, p), q) = transpose(y, r) with r[j] = p[q[j]]: (1,2,0) then
// (2,1,0) is (0,2,1).
// RUN: simplify
// CHECK: %0 = "gs.transpose"(%x) {perm = array<i64: 0, 2, 1>} : (tensor<2x3x4xf32>) -> tensor<2x4x3xf32>
// CHECK: return %0
// CHECK-NOT: 1, 2, 0
func.func @transpose_transpose(%x: tensor<2x3x4xf32>) -> (tensor<2x4x3xf32>) {
  %0 = "gs.transpose"(%x) {perm = array<i64: 1, 2, 0>} : (tensor<2x3x4xf32>) -> tensor<3x4x2xf32> loc("model.py":2:5)
  %1 = "gs.transpose"(%0) {perm = array<i64: 2, 1, 0>} : (tensor<3x4x2xf32>) -> tensor<2x4x3xf32> loc("model.py":2:5)
  return %1 : tensor<2x4x3xf32>
} loc("model.py":1:1)
