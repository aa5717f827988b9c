// -(-(x * 1)) + 0 = x: rounds repeat until nothing changes, and dead constants go.
// RUN: simplify
// CHECK: func.func @chain(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>) {
// CHECK: return %x : tensor<2x3xf32>
// CHECK-NOT: gs.add
// CHECK-NOT: gs.neg
// CHECK-NOT: gs.mul
// CHECK-NOT: gs.constant
func.func @chain(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>) {
  %0 = "gs.constant"() {value = dense<1.0> : tensor<f32>} : () -> tensor<f32> loc("model.py":2:5)
  %1 = "gs.mul"(%x, %0) : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32> loc("model.py":2:5)
  %2 = "gs.neg"(%1) : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("model.py":2:5)
  %3 = "gs.neg"(%2) : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("model.py":2:5)
  %4 = "gs.constant"() {value = dense<0.0> : tensor<f32>} : () -> tensor<f32> loc("model.py":2:5)
  %5 = "gs.add"(%3, %4) : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32> loc("model.py":2:5)
  return %5 : tensor<2x3xf32>
} loc("model.py":1:1)
