// RUN: moe-opt %s -split-input-file -verify-diagnostics

mesh.mesh @ranks(shape = ?)
func.func @counts_shape(%off: tensor<5xi32>) {
  // expected-error@+1 {{expects recv_counts of shape 4 ([num_experts]) but got 5}}
  %c, %r = moe.exchange_counts %off on @ranks : (tensor<5xi32>) -> (tensor<5xi32>, tensor<5xi32>)
  return
}

// -----

mesh.mesh @ranks(shape = ?)
func.func @recv_offset_shape(%off: tensor<5xi32>) {
  // expected-error@+1 {{expects recv_offset of shape 5 ([num_experts + 1]) but got 4}}
  %c, %r = moe.exchange_counts %off on @ranks : (tensor<5xi32>) -> (tensor<4xi32>, tensor<4xi32>)
  return
}

// -----

// expert_offset is [num_experts + 1]: one entry leaves no expert.
mesh.mesh @ranks(shape = ?)
func.func @offset_without_experts(%off: tensor<1xi32>) {
  // expected-error@+1 {{expects an expert_offset of at least 2 entries}}
  %c, %r = moe.exchange_counts %off on @ranks : (tensor<1xi32>) -> (tensor<0xi32>, tensor<1xi32>)
  return
}

// -----

func.func @no_mesh(%off: tensor<5xi32>) {
  // expected-error@+1 {{expects @ranks to name a mesh.mesh of the module}}
  %c, %r = moe.exchange_counts %off on @ranks : (tensor<5xi32>) -> (tensor<4xi32>, tensor<5xi32>)
  return
}

// -----

// The rows a rank receives are not known when the graph is compiled.
mesh.mesh @ranks(shape = ?)
func.func @static_received(%buf: tensor<12x8xf32>, %off: tensor<5xi32>, %c: tensor<4xi32>) {
  // expected-error@+1 {{expects expert-side rows of shape ?x8 (their number is known when the graph runs) but got 12x8}}
  %r = moe.exchange_to_experts %buf, %off, %c on @ranks : (tensor<12x8xf32>, tensor<5xi32>, tensor<4xi32>) -> tensor<12x8xf32>
  return
}

// -----

mesh.mesh @ranks(shape = ?)
func.func @width_mismatch(%rows: tensor<?x6xf32>, %off: tensor<5xi32>, %c: tensor<4xi32>) {
  // expected-error@+1 {{expects expert-side rows of shape ?x8 (their number is known when the graph runs) but got ?x6}}
  %b = moe.exchange_to_tokens %rows, %off, %c on @ranks : (tensor<?x6xf32>, tensor<5xi32>, tensor<4xi32>) -> tensor<12x8xf32>
  return
}

// -----

mesh.mesh @ranks(shape = ?)
func.func @dynamic_buffer(%rows: tensor<?x8xf32>, %off: tensor<5xi32>, %c: tensor<4xi32>) {
  // expected-error@+1 {{expects a static dispatch buffer [A, d], got ?x8}}
  %b = moe.exchange_to_tokens %rows, %off, %c on @ranks : (tensor<?x8xf32>, tensor<5xi32>, tensor<4xi32>) -> tensor<?x8xf32>
  return
}

// -----

mesh.mesh @ranks(shape = ?)
func.func @counts_of_other_plan(%buf: tensor<12x8xf32>, %off: tensor<5xi32>, %c: tensor<8xi32>) {
  // expected-error@+1 {{expects recv_counts of shape 4 ([num_experts]) but got 8}}
  %r = moe.exchange_to_experts %buf, %off, %c on @ranks : (tensor<12x8xf32>, tensor<5xi32>, tensor<8xi32>) -> tensor<?x8xf32>
  return
}

// -----

// expected-error@+2 {{expected attribute value}}
// expected-error@+1 {{failed to parse MoE_ShardAttr parameter 'mesh'}}
func.func @shard_without_mesh(%w: tensor<4x8x8xf32, #moe.shard<>>) {
  return
}
