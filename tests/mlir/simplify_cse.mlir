// Common subexpressions merge, the two equal constants included: one exp, one mul.
// RUN: simplify
// CHECK: %0 = "gs.exp"(%x)
// CHECK: %1 = "gs.constant"() {value = dense<2.0> : tensor<f32>}
// CHECK: %2 = "gs.mul"(%0, %1)
// CHECK: %3 = "gs.add"(%2, %2)
// CHECK: return %3 : tensor<2x3xf32>
// CHECK-COUNT-1: "gs.exp"
// CHECK-COUNT-1: "gs.mul"
// CHECK-COUNT-1: "gs.constant"
func.func @cse(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>) {
  %0 = "gs.exp"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("model.py":2:5)
  %1 = "gs.exp"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("model.py":2:5)
  %2 = "gs.constant"() {value = dense<2.0> : tensor<f32>} : () -> tensor<f32> loc("model.py":2:5)
  %3 = "gs.mul"(%0, %2) : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32> loc("model.py":2:5)
  %4 = "gs.constant"() {value = dense<2.0> : tensor<f32>} : () -> tensor<f32> loc("model.py":2:5)
  %5 = "gs.mul"(%1, %4) : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32> loc("model.py":2:5)
  %6 = "gs.add"(%3, %5) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32> loc("model.py":2:5)
  return %6 : tensor<2x3xf32>
} loc("model.py":1:1)
