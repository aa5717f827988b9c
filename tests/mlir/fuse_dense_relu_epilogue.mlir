// Bias + ReLU after x @ W.T become the product's epilogue: one kernel, nothing stored
// but the output.
// RUN: simplify,fuse
// CHECK: matmul_0: matmul -> ('out', 0) [matmul, add, relu]
// CHECK-COUNT-1: matmul
func.func @dense_relu(%x: tensor<8x4xf32>, %w: tensor<6x4xf32>, %bias: tensor<6xf32>) -> (tensor<8x6xf32>) {
  %0 = "gs.matmul"(%x, %w) {transpose_a = false, transpose_b = true} : (tensor<8x4xf32>, tensor<6x4xf32>) -> tensor<8x6xf32> loc("model.py":2:5)
  %1 = "gs.add"(%0, %bias) : (tensor<8x6xf32>, tensor<6xf32>) -> tensor<8x6xf32> loc("model.py":2:5)
  %2 = "gs.relu"(%1) : (tensor<8x6xf32>) -> tensor<8x6xf32> loc("model.py":2:5)
  return %2 : tensor<8x6xf32>
} loc("model.py":1:1)
