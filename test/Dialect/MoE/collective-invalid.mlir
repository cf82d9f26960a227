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

// -----

// moe.sum_rows_over_ranks: one value row per id ...
mesh.mesh @ranks(shape = ?)
func.func @summed_values_rows(%r: tensor<6xi32>, %v: tensor<5x8xf32>) {
  // expected-error@+1 {{expects values of shape 6x... (a row per id), got 5x8}}
  %i, %s = moe.sum_rows_over_ranks %r, %v on @ranks {vocab = 50 : i64} : (tensor<6xi32>, tensor<5x8xf32>) -> (tensor<?xi32>, tensor<?x8xf32>)
  return
}

// -----

// ... the rows of all ranks, whose number is known when the graph runs ...
mesh.mesh @ranks(shape = ?)
func.func @summed_rows_static(%r: tensor<6xi32>, %v: tensor<6x8xf32>) {
  // expected-error@+1 {{expects summed_rows of shape ? (the rows of all ranks, known when the graph runs) but got 12}}
  %i, %s = moe.sum_rows_over_ranks %r, %v on @ranks {vocab = 50 : i64} : (tensor<6xi32>, tensor<6x8xf32>) -> (tensor<12xi32>, tensor<?x8xf32>)
  return
}

// -----

// ... with the values' row shape ...
mesh.mesh @ranks(shape = ?)
func.func @summed_values_shape(%r: tensor<6xi32>, %v: tensor<6x8xf32>) {
  // expected-error@+1 {{expects summed_values of shape ?x8 (the values' shape with the rows of all ranks) but got ?x4}}
  %i, %s = moe.sum_rows_over_ranks %r, %v on @ranks {vocab = 50 : i64} : (tensor<6xi32>, tensor<6x8xf32>) -> (tensor<?xi32>, tensor<?x4xf32>)
  return
}

// -----

// ... one result per value tensor, one or two of them ...
mesh.mesh @ranks(shape = ?)
func.func @summed_values_count(%r: tensor<6xi32>, %v: tensor<6x8xf32>) {
  // expected-error@+1 {{expects one summed_values result per value tensor (1), got 2}}
  %i, %s, %t = moe.sum_rows_over_ranks %r, %v on @ranks {vocab = 50 : i64} : (tensor<6xi32>, tensor<6x8xf32>) -> (tensor<?xi32>, tensor<?x8xf32>, tensor<?x8xf32>)
  return
}

// -----

mesh.mesh @ranks(shape = ?)
func.func @summed_no_values(%r: tensor<6xi32>) {
  // expected-error@+1 {{expects one or two value tensors (a table's rows and its bias's), got 0}}
  %i = moe.sum_rows_over_ranks %r, on @ranks {vocab = 50 : i64} : (tensor<6xi32>) -> (tensor<?xi32>)
  return
}

// -----

// ... a positive vocabulary ...
mesh.mesh @ranks(shape = ?)
func.func @summed_vocab(%r: tensor<6xi32>, %v: tensor<6x8xf32>) {
  // expected-error@+1 {{attribute 'vocab' failed to satisfy constraint}}
  %i, %s = moe.sum_rows_over_ranks %r, %v on @ranks {vocab = 0 : i64} : (tensor<6xi32>, tensor<6x8xf32>) -> (tensor<?xi32>, tensor<?x8xf32>)
  return
}

// -----

// ... and a mesh.
func.func @summed_mesh(%r: tensor<6xi32>, %v: tensor<6x8xf32>) {
  // expected-error@+1 {{expects @ranks to name a mesh.mesh of the module}}
  %i, %s = moe.sum_rows_over_ranks %r, %v on @ranks {vocab = 50 : i64} : (tensor<6xi32>, tensor<6x8xf32>) -> (tensor<?xi32>, tensor<?x8xf32>)
  return
}
